"""A model configured for other data fails before training, naming both values."""

import pytest

from hlt_core.errors import UserError
from hlt_core.training.module import check_model_fits_data


@pytest.mark.parametrize(
    ("attrs", "dims", "message"),
    [
        ({"input_dim": 32}, {"input_dim": 16}, "model.input_dim=32 but data.dims.input_dim=16"),
        (
            {"vocab_size": 10},
            {"vocab_size": 12, "seq_len": 5},
            "model.vocab_size=10 but data.dims.vocab_size=12",
        ),
        (
            {"vocab_size": 12, "max_len": 4},
            {"vocab_size": 12, "seq_len": 5},
            "model.max_len=4 but data.dims.seq_len=5",
        ),
    ],
)
def test_mismatch_names_both_values(attrs, dims, message):
    with pytest.raises(UserError) as info:
        check_model_fits_data(attrs, dims)
    assert str(info.value) == message


def test_fitting_or_unstated_sizes_pass():
    check_model_fits_data({"input_dim": 16, "max_len": None}, {"input_dim": 16, "seq_len": 3})
    check_model_fits_data({"vocab_size": None, "input_dim": None}, {"vocab_size": 9})
    check_model_fits_data({"input_dim": 4}, None)
