"""torchrun launches write one run: one node of two processes and two "nodes" of one
process each (two torchrun agents meeting at a c10d rendezvous on 127.0.0.1) leave one
run folder with every rank's log, train the same model, and the two-node run resumes
exactly from its last.ckpt; the metrics and predictions of a 2-process evaluation are
those of one process on the same checkpoint."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import APP, REPO, compose_run
from hlt_core.run import run

pytestmark = pytest.mark.cli
NAME = "clusters_mlp_classification"  # no experiment: data_model_task
# 8 training batches a epoch (4 steps on 2 ranks), 2 epochs; 3 val and 3 test batches of
# 8: 24 examples, not a multiple of 2 ranks x 8, so rank 0 reads 2 batches, rank 1 one
DATA = ["data.batch_size=8", "data.train_batches=8", "data.val_batches=3", "data.test_batches=3"]
RUN = [
    *DATA,
    "trainer=ddp",
    "trainer.accelerator=cpu",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "print_config=false",
]
ONE_NODE = ["trainer.devices=2", "trainer.num_nodes=1"]
TWO_NODES = ["trainer.devices=1", "trainer.num_nodes=2"]
# train/loss is left out: after a mid-epoch resume it is the mean of the resumed steps only
COMPARED = ("val/loss", "val/acc", "test/loss", "test/acc", "test/f1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun(cwd: Path, nodes: int, *args: str) -> None:
    """``torchrun`` as a user starts it: one agent of 2 processes, or ``nodes`` agents of
    one process each meeting at a c10d rendezvous (two "nodes" on this machine)."""
    cwd.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")])
    # torchrun gives each process one thread when it starts several per node, else torch
    # takes all cores: the same here for both, so that matmuls sum in the same order
    env["OMP_NUM_THREADS"] = "1"
    launcher = [sys.executable, "-m", "torch.distributed.run"]
    if nodes == 1:
        agents = [[*launcher, "--standalone", "--nproc-per-node=2"]]
    else:
        rendezvous = [
            f"--nnodes={nodes}",
            "--nproc-per-node=1",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{free_port()}",
            "--rdzv-id=hlt-test",
        ]
        agents = [[*launcher, *rendezvous, f"--node-rank={n}"] for n in range(nodes)]
    logs = [cwd / f"agent_{n}.txt" for n in range(len(agents))]  # files: no pipe fills up
    procs = []
    for agent, log in zip(agents, logs, strict=True):
        with log.open("w") as out:  # the child keeps its own copy of the descriptor
            command = [*agent, str(APP / "__main__.py"), *args]
            procs.append(subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out))
    outputs = []
    for proc, log in zip(procs, logs, strict=True):
        proc.wait(timeout=600)
        outputs.append(log.read_text())
        assert proc.returncode == 0, outputs[-1][-3000:]
    assert "sync_dist=True" not in "".join(outputs)  # every epoch metric is the split's


def only_run(cwd: Path) -> Path:
    """The one run folder under ``cwd``, holding rank 0's config and every rank's log."""
    (folder,) = (cwd / "outputs" / NAME / "runs").iterdir()
    assert (folder / ".hydra" / "overrides.yaml").is_file()
    assert (folder / "app.log").is_file() and (folder / "rank_1.log").is_file()
    assert not (folder / ".hlt.lock").exists()  # a clean end removes the lock file
    return folder


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def table(path: Path) -> list[list[str]]:
    with path.open() as handle:
        return list(csv.reader(handle))


def test_torchrun_one_and_two_nodes_write_one_run_and_agree_with_one_process(tmp_path, run_dir):
    one = tmp_path / "one"
    torchrun(one, 1, *RUN, *ONE_NODE, "predict=true")
    reference = only_run(one)
    expected = results(reference)
    assert expected["global_step"] == 8 and expected["status"] == "ok"

    # two nodes, stopped by max_steps in the middle of epoch 2, then resumed
    two = tmp_path / "two"
    torchrun(two, 2, *RUN, *TWO_NODES, "trainer.max_steps=6")
    stopped = only_run(two)
    assert results(stopped)["global_step"] == 6
    torchrun(two, 2, f"resume={stopped}", "trainer.max_steps=-1")
    assert only_run(two) == stopped  # the resume continued in the same folder
    resumed = results(stopped)
    assert resumed["resume_changes"] == "trainer.max_steps=-1"
    # bit-identical to the one-node run: the same steps, weights and Adam moments
    assert resumed["global_step"] == expected["global_step"]
    assert {k: resumed[k] for k in COMPARED} == {k: expected[k] for k in COMPARED}
    ours = torch.load(stopped / "checkpoints" / "last.ckpt", weights_only=True)
    theirs = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(
        torch.equal(ours["state_dict"][k], theirs["state_dict"][k]) for k in theirs["state_dict"]
    )
    moments = ours["optimizer_states"][0]["state"], theirs["optimizer_states"][0]["state"]
    assert all(
        torch.equal(moments[0][i][m], moments[1][i][m])
        for i in moments[1]
        for m in ("exp_avg", "exp_avg_sq")
    )

    # the 2-process test metrics and predictions are one process's on the same checkpoint
    single = tmp_path / "single.csv"
    evaluated = expected["evaluated_checkpoint"]
    cfg = compose_run(
        [*DATA, "train=false", f"ckpt_path={evaluated}", "predict=true", f"predictions={single}"],
        run_dir,
    )
    metrics = run(cfg)
    for key in ("test/loss", "test/acc", "test/f1"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-6), key
    ddp_rows, one_rows = table(reference / "predictions.csv"), table(single)
    assert len(ddp_rows) == len(one_rows) == 1 + 24  # header, every example once
    for ddp_row, one_row in zip(ddp_rows[1:], one_rows[1:], strict=True):
        assert ddp_row[:3] == one_row[:3]  # file, row, predicted class: in split order
        numbers = [float(v) for v in ddp_row[3:]], [float(v) for v in one_row[3:]]
        assert numbers[0] == pytest.approx(numbers[1], abs=1e-6)
