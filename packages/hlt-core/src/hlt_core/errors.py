"""Errors that are the user's to fix: shown as one short line, never as a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

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
