"""Errors in the user's data or data config; each message names the bad key, value or path."""


class DataConfigError(ValueError):
    """A bad data option, file or folder, found before training starts."""
