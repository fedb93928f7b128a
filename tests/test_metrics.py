"""Correlation metrics against hand-computed values, with explicit NaN and constant handling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gm_lab.metrics import correlations, kendall, pearson, spearman, top_k_overlap

TRUTH = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


def test_hand_computed_values():
    scores = np.array([1.0, 3.0, 2.0, 4.0, 5.0])  # one discordant pair of 10
    assert kendall(scores, TRUTH) == pytest.approx(0.8)
    assert spearman(scores, TRUTH) == pytest.approx(1 - 6 * 2 / (5 * 24))
    assert pearson(2 * TRUTH + 1, TRUTH) == pytest.approx(1.0)
    assert kendall(-TRUTH, TRUTH) == pytest.approx(-1.0)


def test_kendall_is_tau_b_with_ties():
    scores = np.array([1.0, 1.0, 2.0, 3.0])
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    # tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)) = 5 / sqrt(5 * 6)
    assert kendall(scores, truth) == pytest.approx(5 / math.sqrt(30))


def test_nan_scores_rank_worst_by_default():
    scores = np.array([np.nan, 2.0, 3.0, 4.0, 5.0])
    assert kendall(scores, TRUTH) == pytest.approx(1.0)
    worse = np.array([1.0, 2.0, 3.0, 4.0, np.inf * 0])
    assert kendall(worse, TRUTH) == pytest.approx(0.2)
    assert kendall(worse, TRUTH, nan_policy="omit") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        kendall(worse, TRUTH, nan_policy="raise")


def test_constant_scores_have_no_correlation():
    constant = np.full(5, 7.0)
    for metric in (kendall, spearman, pearson):
        assert math.isnan(metric(constant, TRUTH))
    assert math.isnan(kendall(np.full(5, np.nan), TRUTH))


def test_top_k_overlap():
    truth = np.arange(20, dtype=float)
    scores = truth.copy()
    scores[[18, 0]] = scores[[0, 18]]  # the 2nd best now scores lowest
    assert top_k_overlap(scores, truth, k=2) == pytest.approx(0.5)
    assert top_k_overlap(scores, truth, k=0.5) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        top_k_overlap(scores, truth, k=50)


def test_correlations_bundle_and_shape_checks():
    out = correlations(np.arange(10.0), np.arange(10.0))
    assert out == pytest.approx(
        {"kendall": 1.0, "spearman": 1.0, "pearson": 1.0, "top10_overlap": 1.0}
    )
    with pytest.raises(ValueError, match="shape"):
        kendall(np.arange(3.0), np.arange(4.0))
    with pytest.raises(ValueError, match="ground truth"):
        kendall(np.arange(3.0), np.array([1.0, np.nan, 2.0]))
