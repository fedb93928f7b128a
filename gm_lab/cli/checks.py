"""Checks of paths and options that run before any work, so a long run never fails at its end.

Each check raises `UnusableOptionError` (a GmLabError: the CLI prints one line and exits 2) naming
the option, the path and what is wrong with it.
"""

from __future__ import annotations

import argparse
import math
import re
import tempfile
from pathlib import Path

from gm_lab.errors import GmLabError

# a Dask scheduler address: [protocol://]host:port (host may be a name, IPv4 or [IPv6])
_ADDRESS = re.compile(
    r"^(?:(?:tcp|tls|inproc|ucx|ws|wss)://)?(?:[\w.-]+|\[[0-9a-fA-F:]+\]):\d{1,5}$"
)


class UnusableOptionError(GmLabError):
    """An option or path cannot be used; found before any work was done."""


def writable_folder(path: Path, what: str) -> Path:
    """`path` exists (or can be created) as a folder we can write files into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UnusableOptionError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UnusableOptionError(
            f"{what} {path} cannot be written to ({exc.strerror or exc})"
        ) from None
    return path


def writable_file(path: Path, what: str) -> Path:
    """`path` can be written as a file: not a folder, and its folder is writable."""
    path = Path(path)
    if path.is_dir():
        raise UnusableOptionError(f"{what} {path} is a folder; give a file name")
    writable_folder(path.parent, f"{what}: the folder of")
    return path


def scheduler_address(text: str) -> str:
    """argparse type of --scheduler: "local" or a scheduler address such as tcp://host:8786."""
    if text == "local" or _ADDRESS.match(text):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither 'local' nor a scheduler address like tcp://host:8786"
    )


def finite_non_negative(text: str) -> float:
    """argparse type of a penalty: a finite number >= 0 (inf or nan would make every fitness
    meaningless)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
