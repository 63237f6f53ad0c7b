"""Errors that are the user's to fix: shown as one short line, never as a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

USER_ERROR = 2  # the exit status of every user error, the app's and Hydra's alike


class UserError(Exception):
    """A bad option, value or path; the message names it."""


def say_user_error(message: object) -> int:
    """Print ``error: <message>`` as one line on stderr; returns ``USER_ERROR``."""
    print(f"error: {message}", file=sys.stderr)
    return USER_ERROR


def exit_user_error(message: object) -> NoReturn:
    """``say_user_error`` and exit with its status."""
    raise SystemExit(say_user_error(message))


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a file someone else may have written; anything else (unreadable,
    not JSON, a list) is a ``UserError`` naming the file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: holds a JSON {type(value).__name__}, not an object")
    return value
