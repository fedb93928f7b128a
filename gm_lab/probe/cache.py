"""On-disk cache of probe records: resumable, verified, and fast to load as arrays.

Layout, under `cache_root()/probe/<space>-<dataset>-<config.key()>/`:

    meta.json          full config (incl. probe version), input provenance, created time
    records/<i>.rec    one file per architecture, written atomically (temp file + rename)
    pack.npz           all verified records consolidated into a few arrays (derived, lazy)

Why this format:
- One file per architecture, renamed into place only when complete, so a crash, SIGKILL or
  Ctrl-C loses at most the architecture in flight and a second run sees exactly what finished.
  Each record carries its length and a CRC32: a damaged file is detected, set aside as
  `<i>.rec.corrupt` with a warning, and re-probed, never read as a wrong value.
- Records are binary float64 (exact values; no float -> text -> float round trip) with a small
  JSON header for names. Reading 1,000 of them is ~0.1-0.2 s; the pack makes it a few ms.
- The pack is only an accelerator: it stores each record's file stamp (size, mtime), so a record
  that was rewritten or removed since packing is taken from its file, not the pack. It is rebuilt
  lazily when many records are new; a damaged pack is discarded with a warning and rebuilt.
- The folder name holds `config.key()`, which hashes every setting that changes the numbers
  (space, dataset, batch size, input kind, seed, probe version): another key is another folder,
  so old entries are never read. meta.json also pins the input provenance: if the same config
  would now get other images (e.g. real CIFAR-100 where a CIFAR-10 stand-in was used), opening
  the cache for probing fails instead of mixing numbers from two different inputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import struct
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gm_lab import __version__
from gm_lab.errors import GmLabError
from gm_lab.paths import cache_root
from gm_lab.plugins import PROXIES
from gm_lab.probe.columns import ProxyColumns
from gm_lab.probe.record import ProbeConfig, ProbeRecord

CACHE_FORMAT = 1
_MAGIC = b"GMPROBE1"
_FRAME = struct.Struct("<8sIQI")  # magic, header bytes, payload bytes, CRC32(header + payload)
_RECORD_NAME = re.compile(r"^(\d+)\.rec$")
# Provenance fields that decide which numbers a probe produces (the free-text note may name
# machine-specific paths and is not compared).
_PROVENANCE_IDENTITY = ("dataset", "source", "is_standin", "batch_size", "seed")
Stamp = tuple[int, int, int]  # a record file's (size, mtime_ns, inode): changes when rewritten


class CacheError(GmLabError):
    """The probe cache cannot give what was asked (missing entries, mismatched inputs)."""


class CorruptEntryWarning(UserWarning):
    """A cache file was damaged; it was set aside and its architecture will be probed again."""


def input_identity(provenance: dict[str, Any]) -> dict[str, Any]:
    """The part of a minibatch provenance that decides the numbers (not the free-text note)."""
    return {key: provenance.get(key) for key in _PROVENANCE_IDENTITY}


# ---- arrays for vectorised evaluation ---------------------------------------------------------
@dataclass(frozen=True)
class ProbeArrays:
    """Statistics of n architectures, padded to the longest network, ready for numpy.

    Row r describes architecture `indices[r]`. `layer_stats[name][r, :n_layers[r]]` are its
    per-layer values in forward order; the rest of the row is NaN and `mask` is False there,
    so reductions over layers use `mask` (or nan-aware functions), never the padding.
    """

    indices: np.ndarray  # int64[n]
    archs: list[str]
    n_layers: np.ndarray  # int64[n]
    mask: np.ndarray  # bool[n, max_layers]
    layer_stats: dict[str, np.ndarray]  # name -> float64[n, max_layers], NaN padded
    proxies: dict[str, np.ndarray]  # name -> float64[n]

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def max_layers(self) -> int:
        return int(self.mask.shape[1])


# ---- one record as bytes ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Raw:
    """A decoded record kept in array form (what packing and loading need, no dict per layer)."""

    index: int
    arch: str
    layer_names: list[str]
    stat_names: tuple[str, ...]
    proxy_names: tuple[str, ...]
    values: np.ndarray  # float64[n_layers, n_stats]
    proxies: np.ndarray  # float64[n_proxies]
    timings: dict[str, float]

    @classmethod
    def from_record(cls, record: ProbeRecord) -> _Raw:
        """The array form of an in-memory record: statistics and proxies in sorted name order."""
        stat_names = tuple(sorted(record.layer_stats))
        proxy_names = tuple(sorted(record.proxies))
        n_layers = record.n_layers
        values = np.empty((n_layers, len(stat_names)), dtype=np.float64)
        for s, name in enumerate(stat_names):
            column = np.asarray(record.layer_stats[name], dtype=np.float64).reshape(-1)
            if column.shape[0] != n_layers:
                raise ValueError(
                    f"arch {record.index}: statistic {name!r} has {column.shape[0]} values for "
                    f"{n_layers} layers"
                )
            values[:, s] = column
        return cls(
            index=int(record.index),
            arch=record.arch,
            layer_names=list(record.layer_names),
            stat_names=stat_names,
            proxy_names=proxy_names,
            values=values,
            proxies=np.array([record.proxies[n] for n in proxy_names], dtype=np.float64),
            timings={k: float(v) for k, v in record.timings.items()},
        )

    def to_record(self) -> ProbeRecord:
        return ProbeRecord(
            index=self.index,
            arch=self.arch,
            layer_names=list(self.layer_names),
            layer_stats={n: self.values[:, s].copy() for s, n in enumerate(self.stat_names)},
            proxies={n: float(v) for n, v in zip(self.proxy_names, self.proxies, strict=True)},
            timings=dict(self.timings),
        )


class _Corrupt(Exception):
    """Internal: a record's bytes are not a complete, intact record (reason in the message)."""


def encode_record(record: ProbeRecord) -> bytes:
    """Frame a record: fixed header, JSON names, float64 payload, CRC32 over both."""
    raw = _Raw.from_record(record)
    header = json.dumps(
        {
            "index": raw.index,
            "arch": raw.arch,
            "layer_names": raw.layer_names,
            "stats": list(raw.stat_names),
            "proxies": list(raw.proxy_names),
            "timings": raw.timings,
        }
    ).encode()
    payload = raw.values.astype("<f8").tobytes() + raw.proxies.astype("<f8").tobytes()
    crc = zlib.crc32(payload, zlib.crc32(header))
    return _FRAME.pack(_MAGIC, len(header), len(payload), crc) + header + payload


def decode_record(blob: bytes, expect_index: int | None = None) -> _Raw:
    """Parse and verify one record; `_Corrupt` says why when the bytes are not intact."""
    if len(blob) < _FRAME.size:
        raise _Corrupt(f"{len(blob)} bytes, shorter than the {_FRAME.size}-byte frame")
    magic, n_header, n_payload, crc = _FRAME.unpack_from(blob)
    if magic != _MAGIC:
        raise _Corrupt(f"bad magic {magic!r}")
    if len(blob) != _FRAME.size + n_header + n_payload:
        raise _Corrupt(f"{len(blob)} bytes, frame says {_FRAME.size + n_header + n_payload}")
    body = memoryview(blob)[_FRAME.size :]
    if zlib.crc32(body) != crc:
        raise _Corrupt("checksum mismatch")
    try:
        head = json.loads(bytes(body[:n_header]))
        stats, names = tuple(head["stats"]), tuple(head["proxies"])
        n_layers = len(head["layer_names"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _Corrupt(f"unreadable header ({exc})") from None
    if n_payload != 8 * (n_layers * len(stats) + len(names)):
        raise _Corrupt("payload size does not match the header")
    if expect_index is not None and head["index"] != expect_index:
        raise _Corrupt(f"holds architecture {head['index']}, not {expect_index}")
    flat = np.frombuffer(body, dtype="<f8", offset=n_header).astype(np.float64)
    split = n_layers * len(stats)
    return _Raw(
        index=int(head["index"]),
        arch=str(head["arch"]),
        layer_names=list(head["layer_names"]),
        stat_names=stats,
        proxy_names=names,
        values=flat[:split].reshape(n_layers, len(stats)),
        proxies=flat[split:],
        timings=dict(head.get("timings", {})),
    )


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so readers see the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---- the consolidated table of all verified records -------------------------------------------
@dataclass
class _Table:
    """All verified records of a cache in ragged form: rows of `values` per arch via `offsets`."""

    indices: np.ndarray  # int64[n], ascending
    archs: list[str]
    stamps: np.ndarray  # int64[n, 3]: (size, mtime_ns, inode) of the record file when read
    offsets: np.ndarray  # int64[n + 1]
    values: np.ndarray  # float64[total_layers, n_stats]
    proxies: np.ndarray  # float64[n, n_proxies]
    stat_names: tuple[str, ...]
    proxy_names: tuple[str, ...]

    @classmethod
    def empty(cls) -> _Table:
        return cls(
            np.zeros(0, np.int64), [], np.zeros((0, 3), np.int64), np.zeros(1, np.int64),
            np.zeros((0, 0)), np.zeros((0, 0)), (), (),
        )  # fmt: skip

    def rows(self, keep: np.ndarray) -> _Table:
        """The sub-table of rows `keep` (positions), in that order."""
        counts = np.diff(self.offsets)[keep]
        starts = self.offsets[:-1][keep]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        gather = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
        return _Table(
            self.indices[keep], [self.archs[k] for k in keep], self.stamps[keep], offsets,
            self.values[gather], self.proxies[keep], self.stat_names, self.proxy_names,
        )  # fmt: skip

    @classmethod
    def concat(cls, parts: list[_Table]) -> _Table:
        parts = [p for p in parts if len(p.indices)]
        if not parts:
            return cls.empty()
        _check_schema(parts[0].stat_names, parts[0].proxy_names, parts, "pack")
        lengths = np.concatenate([np.diff(p.offsets) for p in parts])
        table = cls(
            np.concatenate([p.indices for p in parts]),
            [a for p in parts for a in p.archs],
            np.concatenate([p.stamps for p in parts]),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.proxies for p in parts]),
            parts[0].stat_names,
            parts[0].proxy_names,
        )
        return table.rows(np.argsort(table.indices, kind="stable"))

    @classmethod
    def from_raws(cls, raws: list[_Raw], stamps: list[Stamp]) -> _Table:
        if not raws:
            return cls.empty()
        _check_schema(raws[0].stat_names, raws[0].proxy_names, raws, "record")
        lengths = [r.values.shape[0] for r in raws]
        return cls(
            np.array([r.index for r in raws], dtype=np.int64),
            [r.arch for r in raws],
            np.array(stamps, dtype=np.int64).reshape(-1, 3),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            np.concatenate([r.values for r in raws]),
            np.stack([r.proxies for r in raws]),
            raws[0].stat_names,
            raws[0].proxy_names,
        )

    def to_arrays(self, positions: np.ndarray) -> ProbeArrays:
        """Padded arrays of the rows at `positions` (vectorised: one scatter for all stats)."""
        counts = np.diff(self.offsets)[positions]
        n, width = len(positions), int(counts.max()) if len(positions) else 0
        starts = self.offsets[:-1][positions]
        row = np.repeat(np.arange(n), counts)
        col = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        source = np.repeat(starts, counts) + col
        padded = np.full((len(self.stat_names), n, width), np.nan)
        padded[:, row, col] = self.values[source].T
        mask = np.zeros((n, width), dtype=bool)
        mask[row, col] = True
        proxies = self.proxies[positions]
        return ProbeArrays(
            indices=self.indices[positions].copy(),
            archs=[self.archs[p] for p in positions],
            n_layers=counts.astype(np.int64),
            mask=mask,
            layer_stats={name: padded[s] for s, name in enumerate(self.stat_names)},
            proxies={name: proxies[:, p].copy() for p, name in enumerate(self.proxy_names)},
        )


def records_to_arrays(records: Iterable[ProbeRecord]) -> ProbeArrays:
    """Padded arrays of in-memory records, row r from the r-th record: exactly the arrays
    `ProbeCache.load_arrays` gives once those records are cached (the same conversion), so an
    expression scores a freshly probed network as it scores cached ones. Every record must
    carry the same statistics and proxies (CacheError otherwise)."""
    raws = [_Raw.from_record(r) for r in records]
    stamps: list[Stamp] = [(0, 0, 0)] * len(raws)  # not read from files
    return _Table.from_raws(raws, stamps).to_arrays(np.arange(len(raws)))


def _check_schema(stats: tuple, proxies: tuple, items: Iterable[Any], what: str) -> None:
    for item in items:
        if item.stat_names != stats or item.proxy_names != proxies:
            differ = set(stats) ^ set(item.stat_names) | set(proxies) ^ set(item.proxy_names)
            raise CacheError(
                f"probe cache {what}s disagree on their statistics/proxies ({sorted(differ)}): "
                "the probe changed without a new PROBE_VERSION; delete the cache folder"
            )


def _save_pack(path: Path, table: _Table) -> None:
    """Write the table as one uncompressed npz with its own checksum (atomic)."""
    names = json.dumps(
        {"stats": table.stat_names, "proxies": table.proxy_names, "archs": table.archs}
    ).encode()
    arrays = {
        "indices": table.indices,
        "stamps": table.stamps,
        "offsets": table.offsets,
        "values": np.ascontiguousarray(table.values, dtype="<f8"),
        "proxies": np.ascontiguousarray(table.proxies, dtype="<f8"),
        "names": np.frombuffer(names, dtype=np.uint8),
    }
    arrays["checksum"] = np.array([_pack_checksum(arrays)], dtype=np.int64)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pack.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pack_checksum(arrays: dict[str, np.ndarray]) -> int:
    crc = 0
    for key in ("indices", "stamps", "offsets", "values", "proxies", "names"):
        crc = zlib.crc32(np.ascontiguousarray(arrays[key]).data, crc)
    return crc


def _load_pack(path: Path) -> _Table:
    """Read and verify a pack; `_Corrupt` if it is not intact."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        names = json.loads(arrays["names"].tobytes())
        if int(arrays["checksum"][0]) != _pack_checksum(arrays):
            raise _Corrupt("checksum mismatch")
        table = _Table(
            arrays["indices"], list(names["archs"]), arrays["stamps"], arrays["offsets"],
            arrays["values"], arrays["proxies"], tuple(names["stats"]), tuple(names["proxies"]),
        )  # fmt: skip
    except _Corrupt:
        raise
    except Exception as exc:  # a damaged zip/npy can fail in many ways
        raise _Corrupt(f"unreadable ({type(exc).__name__}: {exc})") from None
    if len(table.archs) != len(table.indices) or table.offsets[-1] != len(table.values):
        raise _Corrupt("inconsistent array sizes")
    return table


# ---- the cache --------------------------------------------------------------------------------
def cache_folder(config: ProbeConfig, root: Path | None = None) -> Path:
    """Where the records of `config` live: one folder per config key."""
    base = Path(root) if root is not None else cache_root() / "probe"
    return base / f"{config.space}-{config.dataset}-{config.key()}"


class ProbeCache:
    """Probe records of one `ProbeConfig`; see the module docstring for the format.

    Writers (`put`) and readers may run in different processes: every file appears atomically,
    and the in-memory view is refreshed from disk whenever the folder changed.
    """

    #: rewrite the pack when at least this many (or 10% more) records are not yet in it
    PACK_MIN_NEW = 32

    def __init__(self, config: ProbeConfig, root: Path | None = None):
        self.config = config
        self.folder = cache_folder(config, root)
        self.records_dir = self.folder / "records"
        self.columns = ProxyColumns(self.folder)
        self._table: _Table | None = None
        self._seen: dict[int, Stamp] | None = None

    def __repr__(self) -> str:
        return f"ProbeCache({self.folder})"

    # ---- meta ---------------------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.folder / "meta.json"

    def meta(self) -> dict[str, Any] | None:
        """The folder's meta.json, or None before the first record was written."""
        if not self.meta_path.is_file():
            return None
        try:
            return json.loads(self.meta_path.read_text())
        except ValueError as exc:
            raise CacheError(f"{self.meta_path} is damaged ({exc}); delete {self.folder}") from None

    def bind_inputs(self, provenance: dict[str, Any]) -> None:
        """Create the folder and meta.json, or check that the inputs are those cached before.

        Raises CacheError if the cache was filled from other inputs (say a stand-in dataset
        that has since been replaced by the real one): mixing the two would be silently wrong.
        """
        self.records_dir.mkdir(parents=True, exist_ok=True)
        meta = self.meta()
        if meta is None:
            meta = {
                "format": CACHE_FORMAT,
                "config": self.config.describe(),
                "probe_version": self.config.version,
                "provenance": provenance,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "gm_lab_version": __version__,
            }
            atomic_write(self.meta_path, json.dumps(meta, indent=2).encode())
            return
        if meta.get("config") != self.config.describe():
            raise CacheError(f"{self.meta_path} describes another probe config: {meta['config']}")
        old, new = input_identity(meta.get("provenance", {})), input_identity(provenance)
        if old != new:
            raise CacheError(
                f"the cached probes in {self.folder} were computed from other inputs "
                f"({old}) than this run would use ({new}); delete that folder to probe again"
            )

    # ---- writing ------------------------------------------------------------------------------
    def record_path(self, index: int) -> Path:
        return self.records_dir / f"{int(index)}.rec"

    def put(self, record: ProbeRecord) -> None:
        """Store one architecture's record atomically (call `bind_inputs` first); its
        standalone proxies go to their own columns (a record without statistics, from
        `score_standalone`, holds nothing else)."""
        self.put_all([record])

    def put_all(self, records: Iterable[ProbeRecord]) -> None:
        """`put` for several records, their column values appended (and synced) together."""
        self._check_bound()
        columns: dict[tuple[str, str], dict[int, Any]] = {}
        for record in records:
            standalone = {n for n in record.proxies if n in PROXIES and PROXIES[n].standalone}
            for name in sorted(standalone):
                key = (name, PROXIES[name].version)
                columns.setdefault(key, {})[record.index] = record.proxies[name]
            if record.layer_names:
                shared = {n: v for n, v in record.proxies.items() if n not in standalone}
                kept = dataclasses.replace(record, proxies=shared)
                atomic_write(self.record_path(record.index), encode_record(kept))
        for (name, version), values in columns.items():
            self.columns.append(name, version, values)

    def put_terminals(self, records: Iterable[ProbeRecord]) -> None:
        """Store what lazy probes computed (`probe_network(..., statistics=...)`): each
        statistic and proxy in its own column (`terminal_version`), never as a record."""
        self._check_bound()
        columns: dict[str, dict[int, Any]] = {}
        for record in records:
            for name, value in {**record.layer_stats, **record.proxies}.items():
                columns.setdefault(name, {})[record.index] = value
        for name in sorted(columns):
            self.columns.append(name, terminal_version(name), columns[name])

    def _check_bound(self) -> None:
        if not self.meta_path.is_file():
            raise CacheError(f"{self.folder} has no meta.json: call bind_inputs() before put()")

    def missing_terminals(self, names: Iterable[str], indices: Iterable[int]) -> dict[str, list]:
        """For each terminal (statistic or proxy) in `names`, those of `indices` neither a
        full record nor its column has a value for (standalone proxies: their column only)."""
        wanted = _unique_in_order(indices)
        without_record = [int(i) for i in wanted[~np.isin(wanted, self._refresh().indices)]]
        gaps = {}
        for name in dict.fromkeys(names):
            pool = wanted if _standalone(name) else without_record
            gap = self.columns.missing(name, terminal_version(name), pool)
            if gap:
                gaps[name] = gap
        return gaps

    def load_terminals(
        self, indices: Iterable[int], names: Iterable[str], archs: Iterable[str] | None = None
    ) -> ProbeArrays:
        """Arrays holding just the terminals `names` for `indices` (in that order): from the
        full records where there is one, else from the columns lazy probing fills.

        `archs` (the architectures' strings) fill `ProbeArrays.archs` for rows without a
        record. Raises CacheError naming what is missing (probe it first)."""
        wanted = _as_indices(indices)
        names = list(dict.fromkeys(names))
        gaps = self.missing_terminals(names, wanted)
        if gaps:
            shown = "; ".join(f"{n}: {len(g)} architecture(s)" for n, g in gaps.items())
            raise CacheError(f"terminals not cached in {self.folder} ({shown}); probe them first")
        table = self._refresh()
        pos = np.searchsorted(table.indices, wanted)
        has = pos < len(table.indices)
        has[has] = table.indices[pos[has]] == wanted[has]
        from_records = table.to_arrays(pos[has])
        stats = [n for n in names if not _is_proxy(n)]
        proxies = [n for n in names if _is_proxy(n)]
        given = list(archs) if archs is not None else [""] * len(wanted)
        rows: list[dict[str, Any]] = []
        record_row = np.cumsum(has) - 1
        lengths = np.zeros(len(wanted), np.int64)
        for r, index in enumerate(wanted):
            if has[r]:
                k = record_row[r]
                n_layers = int(from_records.n_layers[k])
                row = {n: from_records.layer_stats[n][k, :n_layers] for n in stats}
                row.update({n: from_records.proxies[n][k] for n in proxies if not _standalone(n)})
                row["_arch"] = from_records.archs[k]
            else:
                row = {n: self.columns.values(n, terminal_version(n))[int(index)] for n in stats}
                row.update(
                    {
                        n: self.columns.values(n, terminal_version(n))[int(index)]
                        for n in proxies
                        if not _standalone(n)
                    }
                )
                row["_arch"] = given[r]
                n_layers = len(row[stats[0]]) if stats else 0
            for n in proxies:
                if _standalone(n):
                    row[n] = self.columns.values(n, terminal_version(n))[int(index)]
            lengths[r] = n_layers
            rows.append(row)
        width = int(lengths.max()) if len(lengths) else 0
        mask = np.arange(width)[None, :] < lengths[:, None]
        layer_stats = {}
        for n in stats:
            padded = np.full((len(wanted), width), np.nan)
            for r, row in enumerate(rows):
                padded[r, : lengths[r]] = row[n]
            layer_stats[n] = padded
        return ProbeArrays(
            indices=wanted.copy(),
            archs=[row["_arch"] for row in rows],
            n_layers=lengths,
            mask=mask,
            layer_stats=layer_stats,
            proxies={n: np.array([row[n] for row in rows], dtype=np.float64) for n in proxies},
        )

    def missing_standalone(self, names: Iterable[str], indices: Iterable[int]) -> dict[str, list]:
        """For each standalone proxy in `names`, those of `indices` it has no value for."""
        wanted = list(indices)
        gaps = {n: self.columns.missing(n, PROXIES[n].version, wanted) for n in names}
        return {n: gap for n, gap in gaps.items() if gap}

    # ---- reading ------------------------------------------------------------------------------
    def get(self, index: int) -> ProbeRecord:
        """One architecture's record (verified); CacheError if it is not cached."""
        if index not in self:
            raise CacheError(f"architecture {index} is not in {self.folder}")
        try:
            return self._read_raw(int(index)).to_record()
        except _Corrupt:
            raise CacheError(f"architecture {index} was damaged in {self.folder}") from None

    def indices(self) -> np.ndarray:
        """Indices of all intact cached records, ascending."""
        return self._refresh().indices.copy()

    def __contains__(self, index: object) -> bool:
        cached = self._refresh().indices
        pos = np.searchsorted(cached, index)
        return bool(pos < len(cached) and cached[pos] == index)

    def __len__(self) -> int:
        return len(self._refresh().indices)

    def missing(self, indices: Iterable[int]) -> np.ndarray:
        """Those of `indices` (order kept, duplicates dropped) without an intact record."""
        wanted = _unique_in_order(indices)
        return wanted[~np.isin(wanted, self._refresh().indices)]

    def load_arrays(
        self, indices: Iterable[int] | None = None, standalone: Iterable[str] = ()
    ) -> ProbeArrays:
        """Padded arrays for `indices` in the given order (default: everything cached), with
        the shared-pass proxies of the records plus the `standalone` proxies named.

        Raises CacheError naming the architectures that are not cached (probe them first).
        """
        table = self._refresh()
        if indices is None:
            arrays = table.to_arrays(np.arange(len(table.indices)))
            return self._with_standalone(arrays, standalone)
        wanted = _as_indices(indices)
        pos = np.searchsorted(table.indices, wanted)
        found = pos < len(table.indices)
        found[found] = table.indices[pos[found]] == wanted[found]
        if not found.all():
            gone = wanted[~found]
            shown = ", ".join(str(i) for i in gone[:10]) + (" ..." if len(gone) > 10 else "")
            raise CacheError(
                f"{len(gone)} architecture(s) not cached in {self.folder}: {shown}; "
                "probe them first (gm-lab probe / probe_many)"
            )
        return self._with_standalone(table.to_arrays(pos), standalone)

    def _with_standalone(self, arrays: ProbeArrays, names: Iterable[str]) -> ProbeArrays:
        names = list(dict.fromkeys(names))
        gaps = self.missing_standalone(names, arrays.indices)
        if gaps:
            shown = "; ".join(f"{n}: {len(g)} architecture(s)" for n, g in gaps.items())
            raise CacheError(
                f"standalone proxies not cached in {self.folder} ({shown}); compute them "
                "first (probe_many(..., proxies=...))"
            )
        for name in names:
            arrays.proxies[name] = self.columns.array(name, PROXIES[name].version, arrays.indices)
        return arrays

    def compact(self) -> None:
        """Rewrite the pack now with every intact record (normally done lazily on load)."""
        self._refresh(force_pack=True)

    # ---- internals ----------------------------------------------------------------------------
    def _scan(self) -> dict[int, Stamp]:
        """Record files on disk: index -> (size, mtime_ns, inode)."""
        found: dict[int, Stamp] = {}
        if not self.records_dir.is_dir():
            return found
        with os.scandir(self.records_dir) as entries:
            for entry in entries:
                match = _RECORD_NAME.match(entry.name)
                if match:
                    st = entry.stat()
                    found[int(match.group(1))] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return found

    def _refresh(self, force_pack: bool = False) -> _Table:
        """The table of intact records, reusing memory and pack for what did not change."""
        on_disk = self._scan()
        if self._table is not None and on_disk == self._seen and not force_pack:
            return self._table
        packed, pack_rows = self._valid_pack_rows(on_disk)
        fresh = sorted(set(on_disk) - set(packed.indices.tolist()))
        raws, stamps = [], []
        for index in fresh:
            try:
                raws.append(self._read_raw(index))
                stamps.append(on_disk[index])
            except (_Corrupt, FileNotFoundError):  # damaged, or removed since the scan
                on_disk.pop(index)
        table = _Table.concat([packed, _Table.from_raws(raws, stamps)])
        stale = len(packed.indices) < pack_rows
        many_new = len(raws) >= max(self.PACK_MIN_NEW, len(packed.indices) // 10)
        if (force_pack or stale or many_new) and len(table.indices):
            with contextlib.suppress(OSError):  # only an accelerator: a read-only cache is fine
                _save_pack(self.folder / "pack.npz", table)
        self._table, self._seen = table, on_disk
        return table

    def _valid_pack_rows(self, on_disk: dict[int, Stamp]) -> tuple[_Table, int]:
        """Rows of the pack whose record file is unchanged since packing, and the pack's size."""
        path = self.folder / "pack.npz"
        if not path.is_file():
            return _Table.empty(), 0
        try:
            pack = _load_pack(path)
        except _Corrupt as exc:
            warnings.warn(
                f"discarding damaged probe cache pack {path} ({exc}); it is rebuilt from the "
                "per-architecture records",
                CorruptEntryWarning,
                stacklevel=4,
            )
            path.unlink(missing_ok=True)
            return _Table.empty(), 0
        gone = (-1, -1, -1)
        current = np.array([on_disk.get(int(i), gone) for i in pack.indices], dtype=np.int64)
        keep = np.flatnonzero((current.reshape(-1, 3) == pack.stamps).all(axis=1))
        rows = pack.rows(keep) if len(keep) < len(pack.indices) else pack
        return rows, len(pack.indices)

    def _read_raw(self, index: int) -> _Raw:
        """Read and verify one record file; a damaged one is set aside with a warning."""
        path = self.record_path(index)
        try:
            return decode_record(path.read_bytes(), expect_index=index)
        except _Corrupt as exc:
            aside = path.with_name(path.name + ".corrupt")
            with contextlib.suppress(FileNotFoundError):  # another reader set it aside first
                os.replace(path, aside)
            warnings.warn(
                f"probe cache entry {path} is damaged ({exc}); moved to {aside.name}, "
                f"architecture {index} will be probed again",
                CorruptEntryWarning,
                stacklevel=4,
            )
            raise


def terminal_version(name: str) -> str:
    """The column version of a terminal: a standalone proxy's own; `shared` for what the shared
    passes compute (the cache folder's key holds their probe version)."""
    return PROXIES[name].version if _standalone(name) else "shared"


def _is_proxy(name: str) -> bool:
    return name in PROXIES


def _standalone(name: str) -> bool:
    return name in PROXIES and PROXIES[name].standalone


def _as_indices(indices: Iterable[int]) -> np.ndarray:
    arr = np.asarray(indices if isinstance(indices, np.ndarray) else list(indices))
    return arr.astype(np.int64).reshape(-1)


def _unique_in_order(indices: Iterable[int]) -> np.ndarray:
    arr = _as_indices(indices)
    _, first = np.unique(arr, return_index=True)
    return arr[np.sort(first)]
