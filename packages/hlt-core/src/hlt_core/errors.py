"""Errors that are the user's to fix: shown as one short line, never as a traceback."""


class UserError(Exception):
    """A bad option, value or path; the message names it."""
