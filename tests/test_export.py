"""A finished run's export is rebuilt by hlt-models alone, in a venv without Lightning."""

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from build_tools import build_wheel, uv
from hlt_core.composing.init_from import split_model_config
from hlt_core.results.export import model_state
from hlt_core.storing.checkpoints import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent(
    """
    import importlib.util, sys
    from safetensors.torch import load_file
    from hlt_models import load_exported
    # the models wheel brings torch and nothing else of the stack
    for name in ("lightning", "hydra", "omegaconf", "torchmetrics", "hlt_core", "hlt_data",
                 "hlt_tasks"):
        if importlib.util.find_spec(name) is not None:
            raise SystemExit(f"{name} is importable in the export venv")
    ref = load_file(sys.argv[2])
    model = load_exported(sys.argv[1])
    out = model(ref["tokens"])
    assert out.dtype == ref["outputs"].dtype and out.shape == ref["outputs"].shape
    assert bool((out == ref["outputs"]).all()), (out - ref["outputs"]).abs().max()
    print("identical", tuple(out.shape))
    """
)


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    run(
        [
            sys.executable,
            str(ROOT / "apps" / "trainer"),
            "experiment=recall_hyena",
            f"hydra.run.dir={run_dir}",
            "debug=limit",
            "model.dim=16",
            "model.depth=1",
            "logger=none",
            "print_config=false",
        ],
        cwd=ROOT,
    )
    return run_dir


def test_export_holds_the_best_checkpoint_model_and_its_config(trained_run):
    spec = json.loads((trained_run / "export" / "model.json").read_text())
    assert spec["target"] == "hlt_models.Hyena"
    assert spec["kwargs"]["vocab_size"] == 16 and spec["kwargs"]["dim"] == 16
    assert spec["out_features"] == 16
    best = json.loads((trained_run / "results.json").read_text())["best_checkpoint"]
    exported = load_file(str(trained_run / "export" / "model.safetensors"))
    from_ckpt = model_state(load_checkpoint(best)["state_dict"])
    assert exported.keys() == from_ckpt.keys()
    assert all(torch.equal(exported[k], from_ckpt[k]) for k in exported)


def test_export_reproduces_outputs_in_a_venv_without_lightning(trained_run, tmp_path):
    # reference: the model as the trainer built it (Hydra, from the filled config that the
    # checkpoint holds), with the best checkpoint's weights
    best = json.loads((trained_run / "results.json").read_text())["best_checkpoint"]
    cfg = OmegaConf.create(torch.load(best, weights_only=True)["hlt_config"])
    model = instantiate(split_model_config(cfg.model)[0])
    model.load_state_dict(model_state(load_checkpoint(best)["state_dict"]), strict=True)
    tokens = torch.randint(16, (4, 65), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs = model.eval()(tokens)
    save_file({"tokens": tokens, "outputs": outputs}, str(tmp_path / "ref.safetensors"))

    wheel = build_wheel(ROOT / "packages" / "hlt-models", tmp_path / "dist")
    venv = tmp_path / "venv"
    run([uv(), "venv", str(venv), "--python", sys.executable, "-q"])
    python = venv / "bin" / "python"
    torch_version = importlib.metadata.version("torch").split("+")[0]
    run([uv(), "pip", "install", "--python", str(python), str(wheel), f"torch=={torch_version}"])
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    result = run(
        [str(python), str(script), str(trained_run / "export"), str(tmp_path / "ref.safetensors")],
        cwd=tmp_path,
    )
    assert "identical (4, 65, 16)" in result.stdout
