"""The compact benchmark table: one CSV row per architecture, loads in well under a second.

Schema (that of `shared/data/nats_bench/tss.csv`): `index`, `arch`, then per dataset prefix
`p` in (cifar10, cifar100, imagenet16): `p_test`, `p_test_12ep`, `params_p`; CIFAR-10 also has
`cifar10_valid`, `cifar10_valid_test`, `cifar10_valid_train`, `cifar10_valid_train_time_s`.
A space with ground truth for fewer datasets (`SearchSpace.datasets`) needs only `index`,
`arch`, `p_test` and `params_p` of those (`SearchSpace.required_columns`).
Optional columns: `cifar100_valid`, `imagenet16_valid` (mean over seeds, written by our
importer), `*_valid_single_seed` and `hw_*` (HW-NAS-Bench figures, only in tables built from it).
Empty cells mean "no result for this architecture"; they are never filled in.
A table may be xz-compressed (`<space>.csv.xz`, as the embedded default ships): it is read the same
way, and a damaged or cut-short stream is refused like a damaged plain file.
"""

from __future__ import annotations

import io
import lzma
import re
from pathlib import Path

import numpy as np
import pandas as pd

from gm_lab.errors import CorruptDataError
from gm_lab.spaces import COLUMN_PREFIX, SearchSpace

_ACCURACY = re.compile(r"_(test|valid|train)(_|$)")


def read_table(path: Path, space: SearchSpace) -> pd.DataFrame:
    """Read and validate a compact table; a truncated or malformed file raises, never half-loads."""
    path = Path(path)
    data = _read_bytes(path)
    if not data:
        raise CorruptDataError(str(path), "the file is empty")
    if not data.endswith(b"\n"):
        raise CorruptDataError(str(path), "the last line is incomplete (file cut short?)")
    try:
        df = pd.read_csv(io.BytesIO(data), on_bad_lines="error")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptDataError(str(path), f"cannot parse CSV ({exc})") from exc
    missing = [c for c in space.required_columns() if c not in df.columns]
    if missing:
        raise CorruptDataError(str(path), f"missing columns {missing}")
    if len(df) != space.n_archs:
        raise CorruptDataError(
            str(path), f"{len(df)} rows, but the {space.name} space has {space.n_archs} archs"
        )
    if not (df["index"].to_numpy() == range(space.n_archs)).all():
        raise CorruptDataError(str(path), "column 'index' is not 0..n-1 in order")
    for column in df.columns.drop(["index", "arch"]):
        if not pd.api.types.is_numeric_dtype(df[column]):
            raise CorruptDataError(str(path), f"column {column!r} holds non-numeric values")
    problem = implausible(df, space)
    if problem:
        raise CorruptDataError(str(path), problem)
    for prefix in _prefixes(space):
        df[f"params_{prefix}"] = df[f"params_{prefix}"].astype("Int64")
    return df.set_index("index", drop=False)


def _prefixes(space: SearchSpace) -> list[str]:
    """Column prefixes of the datasets the space has ground truth for."""
    return [COLUMN_PREFIX[d] for d in space.datasets]


def accuracy_columns(df: pd.DataFrame) -> list[str]:
    """Columns holding accuracies in percent (test, valid, train; not training times)."""
    return [c for c in df.columns if _ACCURACY.search(c) and not c.endswith("_time_s")]


def implausible(df: pd.DataFrame, space: SearchSpace) -> str | None:
    """Why the table cannot be NATS-Bench ground truth (row and column named), or None.

    Empty cells are fine where a whole architecture has no results (the official sample lists
    every architecture, with results for 3); a row with some test accuracies and not others, a
    non-finite or out-of-range accuracy, a missing parameter count beside results, or a wrong or
    repeated architecture string is refused.
    """
    bad_arch = ~df["arch"].astype(str).str.fullmatch(space.arch_pattern) | df["arch"].isna()
    if bad_arch.any():
        row = int(np.flatnonzero(bad_arch.to_numpy())[0])
        return f"row {row}: {df['arch'].iloc[row]!r} is not a {space.name} architecture string"
    repeated = df["arch"].duplicated()
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        return f"row {row}: architecture {df['arch'].iloc[row]!r} appears twice"
    for column in accuracy_columns(df):
        values = df[column].to_numpy(dtype=float)
        wrong = np.isinf(values) | (values < 0) | (values > 100)
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            return f"row {row}, column {column!r}: accuracy {values[row]} is not in 0..100 %"
    tests = [f"{p}_test" for p in _prefixes(space)]
    known = np.isfinite(df[tests].to_numpy(dtype=float))
    partial = known.any(axis=1) & ~known.all(axis=1)
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        column = tests[int(np.flatnonzero(~known[row])[0])]
        return f"row {row}, column {column!r}: empty although the row has other test accuracies"
    params = [f"params_{p}" for p in _prefixes(space)]
    no_params = known.all(axis=1) & ~np.isfinite(df[params].to_numpy(dtype=float)).all(axis=1)
    if no_params.any():
        row = int(np.flatnonzero(no_params)[0])
        return f"row {row}: test accuracies but no parameter count"
    return None


def _read_bytes(path: Path) -> bytes:
    """The table's CSV bytes, decompressed when the name ends in `.xz`."""
    if path.suffix != ".xz":
        return path.read_bytes()
    try:
        return lzma.decompress(path.read_bytes())
    except lzma.LZMAError as exc:
        raise CorruptDataError(str(path), f"cannot decompress ({exc})") from exc


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write atomically (temp file + rename) so a crash never leaves a half-written table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_csv(tmp, index=False, float_format="%.4f")
    tmp.replace(path)
