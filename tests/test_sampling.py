"""Samplers: seeded, stratified per bin, only archs with ground truth, disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.sampling import (
    SampleSizeError,
    assign_bins,
    bin_edges,
    draw_sample,
    mixed_sample,
    random_sample,
    search_heldout_split,
    stratified_sample,
)


@pytest.fixture(scope="module")
def acc(tss_table) -> np.ndarray:
    return Benchmark.from_table(tss_table, "tss").accuracy("cifar10")


def test_random_sample_is_seeded(acc):
    a = random_sample(acc, 200, seed=3)
    b = random_sample(acc, 200, seed=3)
    c = random_sample(acc, 200, seed=4)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert len(set(a.indices.tolist())) == 200
    assert set(a.indices.tolist()) != set(c.indices.tolist())


def test_samples_only_archs_with_ground_truth():
    acc = np.full(100, np.nan)
    acc[[3, 50, 77]] = [80.0, 85.0, 90.0]
    assert sorted(random_sample(acc, 10).indices.tolist()) == [3, 50, 77]
    strat = stratified_sample(acc, n_per_bin=5, k=2)
    assert sorted(strat.indices.tolist()) == [3, 50, 77]


def test_equal_width_stratified_sample_spans_accuracy_range(acc):
    s = stratified_sample(acc, n_per_bin=20, k=10, seed=0)
    edges = s.bin_edges
    assert edges[0] == pytest.approx(np.nanmin(acc)) and edges[-1] == pytest.approx(np.nanmax(acc))
    np.testing.assert_allclose(np.diff(edges), (edges[-1] - edges[0]) / 10)
    counts = np.bincount(assign_bins(acc, edges), minlength=10)
    expected = np.minimum(counts, 20)  # small low-accuracy bins are taken whole
    np.testing.assert_array_equal(np.bincount(s.bins, minlength=10), expected)
    assert expected.min() < 20 and expected.max() == 20
    np.testing.assert_array_equal(assign_bins(acc[s.indices], edges), s.bins)
    assert s.describe()["per_bin"] == expected.tolist()


def test_equal_frequency_bins_hold_equal_counts(acc):
    edges = bin_edges(acc[np.isfinite(acc)], 5, "frequency")
    counts = np.bincount(assign_bins(acc, edges), minlength=5)
    assert counts.max() - counts.min() <= 0.02 * len(acc)
    s = stratified_sample(acc, n_per_bin=30, k=5, binning="frequency", seed=1)
    np.testing.assert_array_equal(np.bincount(s.bins, minlength=5), [30] * 5)


def test_mixed_sample_is_half_stratified_and_filled_at_random(acc):
    s = mixed_sample(acc, 600, k=10, seed=0)
    strata = stratified_sample(acc, n_per_bin=30, k=10, seed=0)
    assert len(s) == 600 and len(set(s.indices.tolist())) == 600 and s.kind == "mixed"
    np.testing.assert_array_equal(s.indices[: len(strata)], strata.indices)
    np.testing.assert_array_equal(s.bin_edges, strata.bin_edges)
    np.testing.assert_array_equal(assign_bins(acc[s.indices], s.bin_edges), s.bins)
    # the random fill follows the space, whose archs crowd the top bins: more of the sample
    # lies there than in the stratified half alone, and every bin keeps its stratified share
    top = s.bins >= 8
    assert top.mean() > 0.35 > (strata.bins >= 8).mean()
    assert (np.bincount(s.bins, minlength=10) >= np.bincount(strata.bins, minlength=10)).all()
    np.testing.assert_array_equal(mixed_sample(acc, 600, seed=0).indices, s.indices)
    assert set(mixed_sample(acc, 600, seed=1).indices.tolist()) != set(s.indices.tolist())
    kept_apart = s.indices[::2]
    other = mixed_sample(acc, 600, seed=0, exclude=kept_apart)
    assert len(other) == 600 and not set(other.indices.tolist()) & set(kept_apart.tolist())
    tiny = mixed_sample(acc, 4, k=10)  # below one per bin: the strata alone, as stratified
    np.testing.assert_array_equal(tiny.indices, stratified_sample(acc, 1, 10).indices)
    with pytest.raises(ValueError, match="at least 1"):
        mixed_sample(acc, 0)


def test_search_and_heldout_never_overlap(acc):
    for kind in ("random", "stratified", "mixed"):
        search, heldout = search_heldout_split(acc, kind, 500, 1000, seed=0)
        assert not set(search.indices.tolist()) & set(heldout.indices.tolist())
        assert len(search) <= 500 and len(heldout) <= 1000 and len(heldout) > 500
        if kind != "random":
            np.testing.assert_array_equal(search.bin_edges, heldout.bin_edges)


def test_draw_sample_validates_input(acc):
    assert len(draw_sample(acc, "stratified", 100, k=10)) <= 100
    with pytest.raises(ValueError, match="unknown sample kind"):
        draw_sample(acc, "uniform", 10)
    with pytest.raises(ValueError, match="at least 1"):
        random_sample(acc, 0)
    with pytest.raises(ValueError, match="binning"):
        bin_edges(acc, 3, "log")


def test_draw_sample_never_changes_the_size_silently() -> None:
    from gm_lab.sampling import SampleSizeError, draw_sample

    accuracy = np.concatenate([np.linspace(10, 90, 50), np.full(5, np.nan)])
    with pytest.raises(SampleSizeError, match="at least 3"):
        draw_sample(accuracy, "random", 2)
    with pytest.raises(SampleSizeError, match="60 architectures asked, but only 50 have"):
        draw_sample(accuracy, "random", 60)
    with pytest.raises(SampleSizeError, match="no architecture per bin"):
        draw_sample(accuracy, "stratified", 5, k=10)
    assert len(draw_sample(accuracy, "random", 50)) == 50  # exactly all is fine
    exact = draw_sample(accuracy, "stratified", 20, k=10)
    assert len(exact) == 20 and exact.note == ""
    short = draw_sample(accuracy, "stratified", 25, k=10)  # 25 over 10 bins: 2 per bin
    assert len(short) == 20
    assert short.note == "drew 20 of the 25 asked: 25 over 10 bins is 2 per bin (20 at most)"
    assert short.describe()["note"] == short.note


# ---- the final test set ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bench_tss() -> Benchmark:
    return Benchmark.load("tss", progress=False)


def test_final_test_set_is_fixed_for_good() -> None:
    """1,000 sorted indices per space, from SHA-256 alone: the digests below pin them, so no
    code, numpy or data change can move the set silently."""
    import hashlib

    from gm_lab.sampling import final_test_indices

    pinned = {
        "tss": ("e878b4dc18049329", [17, 30, 65, 71, 114]),
        "sss": ("76148b9a0a1fd867", [66, 70, 71, 72, 101]),
    }
    for space, (digest, first) in pinned.items():
        indices = final_test_indices(space)
        assert len(indices) == len(set(indices.tolist())) == 1_000
        assert np.all(np.diff(indices) > 0) and indices[0] >= 0
        assert indices[:5].tolist() == first
        assert hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest()[:16] == digest
        np.testing.assert_array_equal(final_test_indices(space), indices)


def test_no_sample_takes_the_final_test_set_by_default(bench_tss: Benchmark) -> None:
    from gm_lab.evolution import SearchConfig, draw_samples
    from gm_lab.sampling import development_pool, final_test_indices

    final = set(final_test_indices("tss").tolist())
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        accuracy = bench_tss.accuracy(dataset)
        assert len(development_pool(accuracy)) == 15_625 - 1_000  # what `--n all` takes
        for kind in ("random", "stratified", "mixed"):
            for seed in (0, 1):
                drawn = draw_sample(accuracy, kind, 3_000, seed=seed).indices.tolist()
                assert not final & set(drawn), (dataset, kind, seed)
    config = SearchConfig(datasets=("cifar10", "cifar100"), n_search=2_000, n_heldout=2_000)
    search, heldout = draw_samples(bench_tss, config)
    assert heldout is not None and not final & set([*search.indices, *heldout.indices])
    with pytest.raises(SampleSizeError, match="14,625 have ground truth outside the final test"):
        draw_sample(bench_tss.accuracy("cifar10"), "random", 15_000)


def test_final_test_set_opt_out(bench_tss: Benchmark) -> None:
    from gm_lab.evolution import SearchConfig, draw_samples
    from gm_lab.sampling import final_test_indices, final_test_sample

    accuracy = bench_tss.accuracy("cifar10")
    final = final_test_indices("tss")
    everything = draw_sample(accuracy, "random", 15_625, use_final_test=True)
    assert set(final.tolist()) <= set(everything.indices.tolist())
    config = SearchConfig(n_search=5_000, n_heldout=5_000, sample="random", use_final_test=True)
    search, heldout = draw_samples(bench_tss, config)
    assert heldout is not None and set(final.tolist()) & set([*search.indices, *heldout.indices])
    assert SearchConfig.from_dict(config.to_dict()) == config
    stored = {k: v for k, v in SearchConfig().to_dict().items() if k != "use_final_test"}
    assert SearchConfig.from_dict(stored).use_final_test  # drawn before it was kept apart
    scored = final_test_sample(accuracy)  # what `gm-lab score --final-test` scores
    assert scored.kind == "final-test" and scored.indices.tolist() == final.tolist()
    small = np.linspace(0, 1, 50)  # a made-up benchmark has no final test set
    assert len(draw_sample(small, "random", 50)) == 50
    with pytest.raises(SampleSizeError, match="no final test set"):
        final_test_sample(small)
