"""The compact benchmark table: one CSV row per architecture, loads in well under a second.

Schema (that of `shared/data/nats_bench/tss.csv`): `index`, `arch`, then per dataset prefix
`p` in (cifar10, cifar100, imagenet16): `p_test`, `p_test_12ep`, `params_p`; CIFAR-10 also has
`cifar10_valid`, `cifar10_valid_test`, `cifar10_valid_train`, `cifar10_valid_train_time_s`.
Optional columns: `cifar100_valid`, `imagenet16_valid` (mean over seeds, written by our
importer), `*_valid_single_seed` and `hw_*` (HW-NAS-Bench figures, only in tables built from it).
Empty cells mean "no result for this architecture"; they are never filled in.
A table may be xz-compressed (`<space>.csv.xz`, as the embedded default ships): it is read the same
way, and a damaged or cut-short stream is refused like a damaged plain file.
"""

from __future__ import annotations

import io
import lzma
from pathlib import Path

import pandas as pd

from gm_lab.benchmark.spaces import COLUMN_PREFIX, SpaceInfo
from gm_lab.errors import CorruptDataError

REQUIRED_COLUMNS: tuple[str, ...] = (
    "index",
    "arch",
    *(f"{p}_test" for p in COLUMN_PREFIX.values()),
    *(f"params_{p}" for p in COLUMN_PREFIX.values()),
)


def read_table(path: Path, space: SpaceInfo) -> pd.DataFrame:
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
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise CorruptDataError(str(path), f"missing columns {missing}")
    if len(df) != space.n_archs:
        raise CorruptDataError(
            str(path), f"{len(df)} rows, but the {space.name} space has {space.n_archs} archs"
        )
    if not (df["index"].to_numpy() == range(space.n_archs)).all():
        raise CorruptDataError(str(path), "column 'index' is not 0..n-1 in order")
    if df["arch"].isna().any():
        raise CorruptDataError(str(path), "some architecture strings are empty")
    for column in df.columns.drop(["index", "arch"]):
        if not pd.api.types.is_numeric_dtype(df[column]):
            raise CorruptDataError(str(path), f"column {column!r} holds non-numeric values")
    for prefix in COLUMN_PREFIX.values():
        df[f"params_{prefix}"] = df[f"params_{prefix}"].astype("Int64")
    return df.set_index("index", drop=False)


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
