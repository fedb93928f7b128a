"""Read the official NATS-Bench download (`NATS-*-simple` folders) through the `nats_bench` API.

The defaults here are the ones users of that API keep getting wrong: the final epoch of the full
schedule (hp="200" for TSS, hp="90" for SSS; the API's default is the 12-epoch schedule), the mean
over training seeds (`is_random=False`), and validation accuracy of CIFAR-10 from "cifar10-valid"
(the "cifar10" runs are trained on train+valid and have no validation accuracy).
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from gm_lab.errors import CorruptDataError, DataMissingError
from gm_lab.spaces import COLUMN_PREFIX, SearchSpace

_RESULT_FILE = re.compile(r"^(\d{6})\.pickle\.pbz2$")
_READ_ERRORS = (EOFError, OSError, pickle.UnpicklingError, KeyError, ValueError, AssertionError)


def result_indices(folder: Path) -> list[int]:
    """Architecture indices that have a result file in an official `-simple` folder."""
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _RESULT_FILE.match(p.name)))


def open_api(folder: Path, space: SearchSpace) -> Any:
    """The `nats_bench` API over an official folder (fast mode: per-arch files on demand)."""
    import nats_bench

    if space.official_folder is None:
        raise ValueError(f"search space {space.name!r} has no official NATS-Bench download")

    folder = Path(folder)
    meta = folder / "meta.pickle.pbz2"
    if not meta.is_file():
        raise DataMissingError(
            f"{space.display_name} meta file (meta.pickle.pbz2)",
            [str(folder)],
            f"extract the official {space.official_folder}.tar so that {meta} exists",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nats_bench.create(str(folder), space.name, fast_mode=True, verbose=False)
    except _READ_ERRORS as exc:
        raise CorruptDataError(str(meta), f"nats_bench cannot read it ({exc!r})") from exc


def _round(value: float) -> float:
    return round(float(value), 4)


def _arch_row(api: Any, index: int, space: SearchSpace) -> dict[str, Any]:
    """Every table column the official files define for one architecture."""
    hp = space.hp
    row: dict[str, Any] = {"index": index, "arch": api.arch(index)}
    for dataset in space.datasets:
        prefix = COLUMN_PREFIX[dataset]
        final = api.get_more_info(index, dataset, hp=hp, is_random=False)
        row[f"{prefix}_test"] = _round(final["test-accuracy"])
        if dataset != "cifar10":
            row[f"{prefix}_valid"] = _round(final["valid-accuracy"])
        short = api.get_more_info(index, dataset, hp="12", is_random=False)
        row[f"{prefix}_test_12ep"] = _round(short["test-accuracy"])
        params_m = api.get_cost_info(index, dataset, hp=hp)["params"]
        row[f"params_{prefix}"] = round(float(params_m) * 1e6)
    valid = api.get_more_info(index, "cifar10-valid", hp=hp, is_random=False)
    row["cifar10_valid"] = _round(valid["valid-accuracy"])
    row["cifar10_valid_test"] = _round(valid["test-accuracy"])
    row["cifar10_valid_train"] = _round(valid["train-accuracy"])
    row["cifar10_valid_train_time_s"] = round(float(valid["train-all-time"]), 2)
    return row


def extract_table(folder: Path, space: SearchSpace, progress: bool = True) -> pd.DataFrame:
    """Convert an official folder into the compact table: every architecture, results where known.

    Architectures without a result file keep empty cells: nothing is invented.
    """
    folder = Path(folder)
    api = open_api(folder, space)
    n_listed = len(api)
    if n_listed != space.n_archs:
        raise CorruptDataError(
            str(folder / "meta.pickle.pbz2"),
            f"lists {n_listed} architectures, the {space.name} space has {space.n_archs}",
        )
    rows = {i: {"index": i, "arch": api.arch(i)} for i in range(n_listed)}
    indices = result_indices(folder)
    bar: Iterable[int] = tqdm(
        indices, desc=f"import {space.official_folder}", unit="arch", disable=not progress
    )
    for index in bar:
        try:
            rows[index] = _arch_row(api, index, space)
        except _READ_ERRORS as exc:
            path = folder / f"{index:06d}.pickle.pbz2"
            raise CorruptDataError(str(path), f"nats_bench cannot read it ({exc!r})") from exc
        api.arch2infos_dict.pop(index, None)  # keep memory flat over 15k+ architectures
    df = pd.DataFrame.from_records([rows[i] for i in range(n_listed)])
    for prefix in (COLUMN_PREFIX[d] for d in space.datasets):
        df[f"params_{prefix}"] = df.get(f"params_{prefix}", math.nan)
        df[f"params_{prefix}"] = df[f"params_{prefix}"].astype("Int64")
    return df.set_index("index", drop=False)
