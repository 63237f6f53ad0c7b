"""The `hlt` command: project helpers beside the trainer.

uv run hlt new model NAME     # also: task, data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hlt_trainer.paths import project_root
from hlt_trainer.scaffold import KINDS, ScaffoldError, lock, new_package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hlt", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="create a workspace package holding one component")
    new.add_argument("kind", choices=sorted(KINDS), help="what the package provides")
    new.add_argument("name", help="its config option name, e.g. my_net (model=my_net)")
    new.add_argument("--root", type=Path, default=project_root(), help="the repository root")
    args = parser.parse_args(argv)
    try:
        folder = new_package(args.root, args.kind, args.name)
        lock(args.root)
    except ScaffoldError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    group = KINDS[args.kind]
    print(f"created {folder.relative_to(args.root)}")
    print(f"  train with:  uv run apps/trainer {group}={args.name}")
    print(f"  test with:   uv run pytest {folder.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
