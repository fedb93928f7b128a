"""Benchmark layer on the real NATS-Bench data: both routes, defaults, missing and corrupt data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.errors import CorruptDataError, DataMissingError

TSS_FOLDER = "NATS-tss-v1_0-3ffb9-simple"
SSS_FOLDER = "NATS-sss-v1_0-50262-simple"
SAMPLE = (0, 11, 284)


@pytest.fixture(scope="module")
def tss(tss_table: Path) -> Benchmark:
    return Benchmark.from_table(tss_table, "tss")


@pytest.fixture(scope="module")
def tss_official(official_sample: Path) -> Benchmark:
    folder = official_sample / TSS_FOLDER
    return Benchmark.from_official(folder, "tss", progress=False)


def test_table_knows_every_tss_architecture(tss: Benchmark):
    assert tss.n_archs == 15_625
    assert len(tss.with_ground_truth("cifar10")) == 15_625
    assert tss.arch(0).startswith("|avg_pool_3x3~0|+|nor_conv_1x1~0|")
    assert tss.index_of(tss.arch(6111)) == 6111


@pytest.mark.parametrize(
    ("dataset", "index", "acc"),
    [("cifar10", 6111, 94.3733), ("cifar100", 9930, 73.5133), ("ImageNet16-120", 857, 47.3111)],
)
def test_best_architecture_matches_published_maxima(tss: Benchmark, dataset, index, acc):
    best = tss.best(dataset)
    assert best.index == index
    assert best.test_acc == pytest.approx(acc, abs=1e-4)
    assert best.arch == tss.arch(index)


def test_validation_accuracy_comes_from_cifar10_valid(tss: Benchmark):
    assert tss.best("cifar10").index == int(np.nanargmax(tss.accuracy("cifar10", "valid")))
    assert np.nanmax(tss.accuracy("cifar10", "valid")) == pytest.approx(91.607, abs=1e-3)
    with pytest.raises(ValueError, match="unknown split"):
        tss.accuracy("cifar10", "train")


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_official_route_equals_table(tss: Benchmark, tss_official: Benchmark, dataset: str):
    for i in SAMPLE:
        assert tss_official.arch(i) == tss.arch(i)
        expected = tss.accuracy(dataset)[i]
        assert tss_official.accuracy(dataset)[i] == pytest.approx(expected, abs=1e-4)
        assert tss_official.params(dataset)[i] == tss.params(dataset)[i]
    assert tss_official.accuracy("cifar10", "valid")[0] == pytest.approx(81.9827, abs=1e-4)


def test_official_route_uses_full_schedule_and_seed_mean(tss_official: Benchmark):
    """hp="12" (the API default) gives 69.55 for arch 0, one seed gives another number."""
    acc = tss_official.accuracy("cifar10")[0]
    assert acc == pytest.approx(85.8633, abs=1e-4)
    assert tss_official.table.loc[0, "cifar10_test_12ep"] == pytest.approx(69.55, abs=1e-4)
    assert acc != pytest.approx(69.55, abs=1)


def test_official_route_never_invents_results(tss_official: Benchmark):
    assert tss_official.n_archs == 15_625
    assert sorted(tss_official.with_ground_truth("cifar100").tolist()) == list(SAMPLE)
    assert np.isnan(tss_official.accuracy("cifar10")[5])
    assert np.isnan(tss_official.params("cifar10")[5])


def test_sss_lists_all_archs_but_knows_three(official_sample: Path):
    sss = Benchmark.from_official(official_sample / SSS_FOLDER, "sss", progress=False)
    assert sss.n_archs == 32_768
    assert sss.arch(0) == "8:8:8:8:8"
    assert sorted(sss.with_ground_truth("cifar10").tolist()) == list(SAMPLE)
    # hp="90" (final epoch of the SSS schedule), mean over seeds
    assert sss.accuracy("cifar10")[0] == pytest.approx(79.79, abs=1e-4)
    assert sss.params("cifar10")[11] == 49_202
    summary = sss.summary("cifar10")
    assert summary["n_with_ground_truth"] == 3
    assert summary["best"]["index"] == 284


def test_load_finds_table_then_imports_official_once(tmp_path, monkeypatch, official_sample):
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path / "data"))
    shutil.copytree(official_sample / SSS_FOLDER, tmp_path / "data" / "nats_bench" / SSS_FOLDER)
    first = Benchmark.load("sss", progress=False)
    assert first.source.endswith(SSS_FOLDER)
    again = Benchmark.load("sss", progress=False)
    assert again.source.endswith("sss.csv")  # the imported table, not a second import
    np.testing.assert_array_equal(first.accuracy("cifar100"), again.accuracy("cifar100"))
    assert list(first.archs) == list(again.archs)


def test_missing_data_names_what_where_and_how(tmp_path, monkeypatch, no_embedded):
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path))
    with pytest.raises(DataMissingError) as err:
        Benchmark.load("tss")
    message = str(err.value)
    assert "NATS-Bench TSS results not found" in message
    assert str(tmp_path / "nats_bench" / "tss.csv") in message
    assert "NATS-tss-v1_0-3ffb9-simple" in message and "gm-lab data import" in message
    assert "gm-lab data download tss" in message


def test_truncated_table_is_refused(tmp_path, tss_table):
    text = pd.read_csv(tss_table).to_csv(index=False)
    cut = tmp_path / "tss.csv"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptDataError, match="incomplete"):
        Benchmark.from_table(cut, "tss")
    lines = text.splitlines(keepends=True)
    cut.write_text("".join(lines[:-10]))
    with pytest.raises(CorruptDataError, match="15615 rows"):
        Benchmark.from_table(cut, "tss")


def test_truncated_official_file_is_refused(tmp_path, official_sample):
    folder = tmp_path / TSS_FOLDER
    shutil.copytree(official_sample / TSS_FOLDER, folder)
    victim = folder / "000011.pickle.pbz2"
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(CorruptDataError, match=r"000011\.pickle\.pbz2"):
        Benchmark.from_official(folder, "tss", progress=False)


def test_unknown_space_and_dataset_are_clear(tss: Benchmark):
    with pytest.raises(ValueError, match="unknown search space"):
        Benchmark.from_table("x.csv", "nas101")
    with pytest.raises(ValueError, match="unknown dataset"):
        tss.accuracy("mnist")


def test_costs_carry_params_and_hardware_figures(tss: Benchmark):
    costs = tss.costs("cifar100")
    assert costs.loc[0, "params_cifar100"] == 135_156
    assert costs.loc[0, "hw_edgegpu_latency_cifar100"] == pytest.approx(5.86608)
    assert not any(c.endswith("_cifar10") for c in costs.columns)
    assert "cifar10_valid_train_time_s" in tss.costs("cifar10")


def _damaged(tss_table: Path, tmp_path: Path, damage) -> Path:
    table = pd.read_csv(tss_table)
    damage(table)
    path = tmp_path / "tss.csv"
    table.to_csv(path, index=False)
    return path


def _half_empty(table: pd.DataFrame) -> None:
    table.loc[table.index % 2 == 1, "cifar100_test"] = np.nan


def _minus_a_billion(table: pd.DataFrame) -> None:
    table.loc[7, "cifar10_valid"] = -1e9


def _infinite(table: pd.DataFrame) -> None:
    table.loc[3, "imagenet16_test_12ep"] = np.inf


def _repeated_arch(table: pd.DataFrame) -> None:
    table.loc[5, "arch"] = table.loc[4, "arch"]


def _foreign_arch(table: pd.DataFrame) -> None:
    table.loc[2, "arch"] = "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _params_missing(table: pd.DataFrame) -> None:
    table.loc[9, "params_cifar10"] = np.nan


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_half_empty, "row 1, column 'cifar100_test': empty although the row has other test"),
        (
            _minus_a_billion,
            "row 7, column 'cifar10_valid': accuracy -1000000000.0 is not in 0..100",
        ),
        (_infinite, "row 3, column 'imagenet16_test_12ep': accuracy inf is not in 0..100"),
        (_repeated_arch, "row 5: architecture"),
        (_foreign_arch, "row 2: '|conv_7x7~0|"),
        (_params_missing, "row 9: test accuracies but no parameter count"),
    ],
)
def test_implausible_tables_are_refused_naming_row_and_column(
    tss_table: Path, tmp_path: Path, damage, reason: str
) -> None:
    path = _damaged(tss_table, tmp_path, damage)
    with pytest.raises(CorruptDataError) as err:
        Benchmark.from_table(path, "tss")
    assert reason in str(err.value) and str(path) in str(err.value)
