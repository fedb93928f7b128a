"""Cached values of single terminals: one append-only file per proxy (or statistic) and version.

Why apart from the records: a record holds what one full probe computes (the statistics and the
shared-pass proxies, all under PROBE_VERSION). A standalone proxy -- a plug-in, or one of
gm_lab's newer proxies -- has its own version and its own cost, so its values live in
``columns/<name>@<version>.tsv`` next to the records: registering a proxy, or changing one,
never invalidates any other cached value, and an expression pays only for the proxies it uses.
Lazy probing (gm_lab.probe.lazy) keeps the shared terminals it computes for an expression here
too, under the version ``shared`` (the cache folder's key already holds the probe version).

Format: one ``index<TAB>value`` line per architecture, the value as Python's `repr` of a float
(exact round trip, "nan" and "inf" included); a per-layer statistic's value is a vector,
written ``[v1, v2, ...]``. Only the parent process appends (as the records:
workers compute, the parent writes), a line at a time, flushed; a torn last line from a crash
is ignored on reading and rewritten by the next run. The last line for an index wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

Value = float | np.ndarray  # a proxy's value, or a statistic's per-layer vector


class ProxyColumns:
    """The single-terminal values of one probe cache folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / "columns"
        self._memo: dict[Path, tuple[tuple[int, int], dict[int, Value]]] = {}

    def path(self, name: str, version: str) -> Path:
        return self.folder / f"{name}@{version}.tsv"

    def values(self, name: str, version: str) -> dict[int, Value]:
        """index -> value of every architecture cached for this proxy version."""
        path = self.path(name, version)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return {}
        stamp = (stat.st_size, stat.st_mtime_ns)
        memo = self._memo.get(path)
        if memo is not None and memo[0] == stamp:
            return memo[1]
        found: dict[int, Value] = {}
        with open(path, encoding="ascii", errors="replace") as lines:
            for line in lines:
                if not line.endswith("\n"):
                    break  # torn by a crash mid-write
                index, _tab, value = line.rstrip("\n").partition("\t")
                try:
                    found[int(index)] = _parse(value)
                except ValueError:
                    continue  # a damaged line counts as not cached
        self._memo[path] = (stamp, found)
        return found

    def missing(self, name: str, version: str, indices: Iterable[int]) -> list[int]:
        have = self.values(name, version)
        return [int(i) for i in dict.fromkeys(int(i) for i in indices) if int(i) not in have]

    def append(self, name: str, version: str, values: Mapping[int, Value]) -> None:
        """Add values (a new line per index), flushed to disk before returning."""
        if not values:
            return
        path = self.path(name, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{int(i)}\t{_format(v)}\n" for i, v in values.items())
        with open(path, "a+b") as out:
            out.seek(0, os.SEEK_END)
            if out.tell() > 0:  # start on a fresh line if a crash tore the last one
                out.seek(-1, os.SEEK_END)
                if out.read(1) != b"\n":
                    out.write(b"\n")
            out.write(lines.encode("ascii"))
            out.flush()
            os.fsync(out.fileno())

    def array(self, name: str, version: str, indices: Iterable[int]) -> np.ndarray:
        """float64 values in the order of `indices`; KeyError naming the first missing one."""
        have = self.values(name, version)
        return np.array([have[int(i)] for i in indices], dtype=np.float64)


def _format(value: Value) -> str:
    if isinstance(value, np.ndarray):
        return "[" + ", ".join(repr(float(v)) for v in value) + "]"
    return repr(float(value))


def _parse(text: str) -> Value:
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError(text)
        inner = text[1:-1].strip()
        return np.array([float(v) for v in inner.split(",")] if inner else [], dtype=np.float64)
    return float(text)
