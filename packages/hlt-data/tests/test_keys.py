from hlt_data import BatchKeys


def test_ranks_share_the_epoch_without_overlap():
    shares = [list(BatchKeys(10, rank=r, world_size=3)) for r in range(3)]
    flat = [key for share in shares for key in share]
    assert len(flat) == len(set(flat)) == 9  # training drops 10 % 3 so ranks stay even
    assert {len(share) for share in shares} == {3}


def test_eval_keys_cover_every_batch_once():
    shares = [list(BatchKeys(10, rank=r, world_size=3, even=False)) for r in range(3)]
    assert sorted(i for share in shares for _, i in share) == list(range(10))


def test_resume_skips_consumed_batches_of_that_epoch_only():
    keys = BatchKeys(6)
    keys.resume_at(epoch=2, position=4)
    assert list(keys) == [(2, 4), (2, 5)]
    assert list(keys) == [(2, 4), (2, 5)]  # until the loader has built its iterator
    keys.clear_resume()
    assert list(keys) == [(2, i) for i in range(6)]
    keys.resume_at(epoch=2, position=4)
    keys.set_epoch(3)  # Lightning moved on to another epoch
    assert list(keys) == [(3, i) for i in range(6)]
    keys.resume_at(epoch=3, position=6)  # saved at the end of the epoch
    assert list(keys) == [(3, i) for i in range(6)]
