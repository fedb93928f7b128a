"""Probe cache: exact round trip, padding, damaged entries, key changes, speed, and backends."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.probe.cache import (
    CacheError,
    CorruptEntryWarning,
    ProbeCache,
    cache_folder,
    decode_record,
    encode_record,
    input_identity,
)
from gm_lab.probe.record import PROBE_VERSION, ProbeConfig, ProbeRecord
from gm_lab.probe.runner import ProbeFailedError, _probe_task, probe_many

CONFIG = ProbeConfig(space="tss", dataset="cifar10", batch_size=8, seed=0)
PROVENANCE = {"dataset": "cifar10", "source": "cifar10-test", "is_standin": False, "seed": 0}
TRICKY = [np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308, 1 / 3, -2.5]


def make_record(index: int, n_layers: int, seed: int = 0) -> ProbeRecord:
    """A synthetic record with values no text format would keep exactly."""
    rng = np.random.default_rng(seed + index)
    return ProbeRecord(
        index=index,
        arch=f"|arch~{index}|",
        layer_names=[f"layer{i}" for i in range(n_layers)],
        layer_stats={
            "alpha": rng.standard_normal(n_layers) * 1e-7,
            "beta": np.resize(np.array(TRICKY), n_layers),
        },
        proxies={"grad_norm": float(rng.standard_normal()), "odd": float("nan")},
        timings={"total": 0.5},
    )


@pytest.fixture
def cache(tmp_path: Path) -> ProbeCache:
    fresh = ProbeCache(CONFIG, root=tmp_path)
    fresh.bind_inputs(PROVENANCE)
    return fresh


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.asarray(a, "<f8").tobytes() == np.asarray(b, "<f8").tobytes()


# ---- format -----------------------------------------------------------------------------------
def test_record_round_trip_is_bit_exact(cache: ProbeCache, tmp_path: Path):
    record = make_record(7, 11)
    cache.put(record)
    again = ProbeCache(CONFIG, root=tmp_path).get(7)
    assert (again.index, again.arch, again.layer_names) == (7, record.arch, record.layer_names)
    for name, values in record.layer_stats.items():
        assert same_bits(again.layer_stats[name], values), name
    assert again.proxies["grad_norm"] == record.proxies["grad_norm"]
    assert np.isnan(again.proxies["odd"])
    assert again.timings == record.timings


def test_meta_json_names_config_version_inputs_and_time(cache: ProbeCache):
    meta = json.loads(cache.meta_path.read_text())
    assert meta["config"] == CONFIG.describe()
    assert meta["probe_version"] == PROBE_VERSION
    assert meta["provenance"] == PROVENANCE
    assert meta["created"]
    assert cache.folder.name == f"tss-cifar10-{CONFIG.key()}"


def test_load_arrays_pads_with_nan_and_masks(cache: ProbeCache):
    lengths = {3: 4, 10: 1, 5: 6}
    for index, n_layers in lengths.items():
        cache.put(make_record(index, n_layers))
    arrays = cache.load_arrays([5, 3, 10])
    assert arrays.indices.tolist() == [5, 3, 10]
    assert arrays.n_layers.tolist() == [6, 4, 1]
    assert arrays.mask.shape == (3, 6) and arrays.max_layers == 6
    assert arrays.mask.sum(axis=1).tolist() == [6, 4, 1]
    assert arrays.archs == ["|arch~5|", "|arch~3|", "|arch~10|"]
    for row, index in enumerate([5, 3, 10]):
        record = make_record(index, lengths[index])
        n = lengths[index]
        for name in ("alpha", "beta"):
            assert same_bits(arrays.layer_stats[name][row, :n], record.layer_stats[name])
            assert np.isnan(arrays.layer_stats[name][row, n:]).all()
        assert arrays.proxies["grad_norm"][row] == record.proxies["grad_norm"]
    assert set(arrays.layer_stats) == {"alpha", "beta"}


def test_load_arrays_names_missing_architectures(cache: ProbeCache):
    cache.put(make_record(1, 2))
    with pytest.raises(CacheError, match=r"2 architecture\(s\) not cached.*: 8, 9"):
        cache.load_arrays([1, 8, 9])
    assert cache.missing([9, 1, 8, 9]).tolist() == [9, 8]


def test_loading_1000_records_takes_under_2_s(cache: ProbeCache, tmp_path: Path):
    rng = np.random.default_rng(0)
    for index in range(1000):
        n_layers = int(rng.integers(20, 84))
        names = [f"l{i}" for i in range(n_layers)]
        stats = {f"s{s}": rng.standard_normal(n_layers) for s in range(35)}
        proxies = {f"p{p}": float(p) for p in range(15)}
        cache.put(ProbeRecord(index, f"a{index}", names, stats, proxies))
    start = time.perf_counter()
    cold = ProbeCache(CONFIG, root=tmp_path).load_arrays(range(1000))
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    warm = ProbeCache(CONFIG, root=tmp_path).load_arrays(range(1000))
    warm_s = time.perf_counter() - start
    assert cold_s < 2.0 and warm_s < 2.0, (cold_s, warm_s)
    assert (cache.folder / "pack.npz").is_file()
    assert len(cold.layer_stats) == 35 and cold.layer_stats["s0"].shape == (1000, 83)
    for name in cold.layer_stats:
        assert same_bits(cold.layer_stats[name], warm.layer_stats[name])


# ---- damage -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],  # torn write
        lambda blob: blob[:-1],  # one byte short
        lambda blob: blob[:-3] + bytes([blob[-3] ^ 0x01]) + blob[-2:],  # flipped bit in payload
        lambda blob: b"",  # empty file
    ],
    ids=["half", "short", "bitflip", "empty"],
)
def test_damaged_record_is_set_aside_never_read(cache: ProbeCache, tmp_path: Path, damage):
    for index in (1, 2):
        cache.put(make_record(index, 5))
    path = cache.record_path(2)
    path.write_bytes(damage(path.read_bytes()))
    reader = ProbeCache(CONFIG, root=tmp_path)
    with pytest.warns(CorruptEntryWarning, match="probed again"):
        assert reader.indices().tolist() == [1]
    assert not path.exists() and path.with_name("2.rec.corrupt").exists()
    assert reader.missing([1, 2]).tolist() == [2]
    with pytest.raises(CacheError, match="not cached"):
        reader.load_arrays([1, 2])


def test_record_of_another_architecture_is_refused(cache: ProbeCache):
    cache.put(make_record(1, 3))
    os.replace(cache.record_path(1), cache.record_path(4))
    with pytest.warns(CorruptEntryWarning, match="holds architecture 1"):
        assert len(cache) == 0


def test_leftover_temp_file_of_a_crash_is_ignored(cache: ProbeCache):
    blob = encode_record(make_record(3, 4))
    (cache.records_dir / ".3.rec.abc123.tmp").write_bytes(blob[:100])
    assert cache.indices().tolist() == []
    assert decode_record(blob).index == 3


def test_pack_rows_of_rewritten_or_removed_records_are_not_used(cache: ProbeCache, tmp_path):
    for index in range(40):
        cache.put(make_record(index, 3))
    cache.compact()
    newer = replace(make_record(5, 3), proxies={"grad_norm": 123.0, "odd": 0.0})
    cache.put(newer)
    cache.record_path(6).unlink()
    arrays = ProbeCache(CONFIG, root=tmp_path).load_arrays()
    assert 6 not in arrays.indices and len(arrays) == 39
    assert arrays.proxies["grad_norm"][list(arrays.indices).index(5)] == 123.0


def test_damaged_pack_is_discarded_and_rebuilt(cache: ProbeCache, tmp_path: Path):
    for index in range(40):
        cache.put(make_record(index, 3))
    expected = cache.load_arrays()
    pack = cache.folder / "pack.npz"
    blob = bytearray(pack.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    pack.write_bytes(bytes(blob))
    with pytest.warns(CorruptEntryWarning, match="pack"):
        arrays = ProbeCache(CONFIG, root=tmp_path).load_arrays()
    assert same_bits(arrays.layer_stats["alpha"], expected.layer_stats["alpha"])
    assert pack.is_file()


def test_records_with_other_statistics_raise(cache: ProbeCache):
    cache.put(make_record(1, 3))
    other = make_record(2, 3)
    other.layer_stats["gamma"] = np.zeros(3)
    cache.put(other)
    with pytest.raises(CacheError, match="PROBE_VERSION"):
        cache.load_arrays()


# ---- keys and inputs --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"batch_size": 16},
        {"version": PROBE_VERSION + "-next"},
        {"input_kind": "gaussian"},
        {"dataset": "cifar100"},
        {"space": "sss"},
    ],
)
def test_key_change_never_reads_old_entries(cache: ProbeCache, tmp_path: Path, change):
    cache.put(make_record(1, 3))
    other = ProbeCache(replace(CONFIG, **change), root=tmp_path)
    assert other.folder != cache.folder
    assert other.missing([1]).tolist() == [1] and len(other) == 0
    assert ProbeCache(CONFIG, root=tmp_path).indices().tolist() == [1]


def test_default_folder_is_under_the_cache_root(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("GM_LAB_CACHE", str(tmp_path))
    assert cache_folder(CONFIG) == tmp_path / "probe" / f"tss-cifar10-{CONFIG.key()}"


def test_other_inputs_for_the_same_config_are_refused(cache: ProbeCache):
    cache.bind_inputs({**PROVENANCE, "note": "another machine's path"})  # same inputs: fine
    real = {**PROVENANCE, "source": "cifar100-test", "is_standin": False}
    with pytest.raises(CacheError, match="other inputs"):
        cache.bind_inputs(real)


def test_put_before_bind_inputs_is_refused(tmp_path: Path):
    with pytest.raises(CacheError, match="bind_inputs"):
        ProbeCache(CONFIG, root=tmp_path).put(make_record(1, 2))


# ---- backends: the real probe, batch 8 --------------------------------------------------------
@pytest.fixture
def bench(tss_table: Path) -> Benchmark:
    return Benchmark.from_table(tss_table, "tss")


def assert_same_arrays(a, b) -> None:
    assert a.indices.tolist() == b.indices.tolist()
    assert set(a.layer_stats) == set(b.layer_stats) and set(a.proxies) == set(b.proxies)
    for name in a.layer_stats:
        assert same_bits(a.layer_stats[name], b.layer_stats[name]), name
    for name in a.proxies:
        assert same_bits(a.proxies[name], b.proxies[name]), name


@pytest.mark.slow
def test_process_pool_and_dask_equal_in_process_exactly(bench: Benchmark, tmp_path: Path):
    from dask.distributed import LocalCluster

    config = ProbeConfig(dataset="ImageNet16-120", batch_size=8)  # 16x16: cheap to probe
    indices = [1234, 0, 9999]

    def run(name: str, **how) -> ProbeCache:
        cache = ProbeCache(config, root=tmp_path / name)
        return probe_many(bench, indices, config, progress=False, cache=cache, **how)

    serial = run("serial", workers=1)
    pool = run("pool", workers=2)
    local = dict(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    with LocalCluster(**local) as cluster:
        dask = run("dask", scheduler=cluster.scheduler_address)
    expected = serial.load_arrays(indices)
    assert len(expected) == 3 and {"grad_norm", "snip", "synflow"} <= set(expected.proxies)
    assert_same_arrays(pool.load_arrays(indices), expected)
    assert_same_arrays(dask.load_arrays(indices), expected)
    # a second run probes nothing: the probe would fail if called
    probe_many(bench, indices, config, workers=1, progress=False, cache=serial, probe=_fail)


def _fail(*args, **kwargs):
    raise AssertionError("probed although cached")


def test_failed_probe_keeps_finished_archs_and_names_the_culprit(bench: Benchmark, tmp_path):
    def flaky(index, arch, config, batch=None, noise=None):
        if index == 30:
            raise ValueError("boom")
        return replace(make_record(index, 3), arch=arch)

    cache = ProbeCache(CONFIG, root=tmp_path)
    with pytest.raises(ProbeFailedError, match=r"architecture 30 .*ValueError: boom"):
        probe_many(
            bench, [10, 20, 30, 40], CONFIG, workers=0, progress=False, cache=cache, probe=flaky
        )
    assert cache.indices().tolist() == [10, 20]
    assert cache.meta()["provenance"]["source"].startswith("cifar10-test")  # real images, any pack


def test_worker_with_other_inputs_refuses_to_probe():
    other = {**input_identity({"dataset": "cifar10"}), "source": "gaussian-noise"}
    with pytest.raises(RuntimeError, match="this worker's minibatch"):
        _probe_task(0, "|x|", CONFIG, _fail, other)
