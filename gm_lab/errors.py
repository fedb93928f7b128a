"""Exceptions that carry a message a user can act on (what, where we looked, what to do)."""

from __future__ import annotations


class GmLabError(Exception):
    """Base class of every error gm_lab raises on purpose."""


class DataMissingError(GmLabError, FileNotFoundError):
    """A data file or folder gm_lab needs is not where it looked."""

    def __init__(self, what: str, looked: list[str], how_to_get: str):
        self.what = what
        self.looked = looked
        self.how_to_get = how_to_get
        places = "\n".join(f"  - {p}" for p in looked)
        super().__init__(f"{what} not found. Looked in:\n{places}\nTo get it: {how_to_get}")


class CorruptDataError(GmLabError, ValueError):
    """A data file exists but cannot be read completely; nothing partial is returned."""

    def __init__(self, path: str, reason: str):
        self.path = path
        super().__init__(f"{path} is corrupt or truncated: {reason}")
