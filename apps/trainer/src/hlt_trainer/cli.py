"""The `hlt` command: project helpers beside the trainer.

uv run hlt new model NAME     # also: task, data
uv run hlt predict RUN_OR_EXPORT FILE_OR_FOLDER [--out predictions.csv] [--overwrite]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hlt_core.errors import say_user_error
from hlt_trainer.paths import project_root
from hlt_trainer.scaffold import KINDS, ScaffoldError, lock, new_package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hlt", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="create a workspace package holding one component")
    new.add_argument("kind", choices=sorted(KINDS), help="what the package provides")
    new.add_argument("name", help="its config option name, e.g. my_net (model=my_net)")
    new.add_argument("--root", type=Path, default=project_root(), help="the repository root")
    pred = commands.add_parser("predict", help="predict on new files with a trained export")
    pred.add_argument("source", type=Path, help="a run folder or its export/ folder")
    pred.add_argument("inputs", type=Path, help="a file or folder read as the run read its data")
    pred.add_argument(
        "--out", type=Path, default=Path("predictions.csv"), help="the table (.csv or .parquet)"
    )
    pred.add_argument("--batch-size", default="1024", help="rows per predictor call (1 or more)")
    pred.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists (never an input)"
    )
    args = parser.parse_args(argv)
    if args.command == "predict":
        return predict_command(args.source, args.inputs, args.out, args.batch_size, args.overwrite)
    try:
        folder = new_package(args.root, args.kind, args.name)
        lock(args.root)
    except ScaffoldError as error:
        return say_user_error(error)
    group = KINDS[args.kind]
    print(f"created {folder.relative_to(args.root)}")
    print(f"  train with:  uv run apps/trainer {group}={args.name}")
    print(f"  test with:   uv run pytest {folder.relative_to(args.root)}")
    return 0


def predict_command(source: Path, inputs: Path, out: Path, batch_size: str, overwrite: bool) -> int:
    """Bad input is one line naming the file and row; torch loads only here."""
    from hlt_core.errors import UserError
    from hlt_data import DataConfigError
    from hlt_trainer.predict import predict

    try:
        rows = predict(source, inputs, out, batch_size, overwrite)
    except (UserError, DataConfigError) as error:
        return say_user_error(error)
    print(f"wrote {rows} predictions to {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
