"""The evaluation protocol of an accuracy predictor (what `gm-lab predict` runs).

For one seed: draw `heldout_n` architectures uniformly at random (`gm_lab.sampling.draw_sample`,
which keeps the final test set out), then `train_n` more among the rest, also uniformly at
random: disjoint by construction (and checked). Train on the first with their test accuracy,
predict the second, report Kendall tau and Spearman rho (gm_lab.metrics) and MAE / RMSE in
accuracy points. The held-out sample is drawn first so that, for one seed, every train size of
a learning curve is judged on the same held-out architectures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gm_lab.predict.features import Features
from gm_lab.predict.model import Predictor, fit_predictor, tune
from gm_lab.sampling import SampleSizeError, development_pool, draw_sample

CURVE_SIZES: tuple[int, ...] = (25, 50, 100, 200, 400, 1000)
CURVE_SEEDS = 5
MIN_TRAIN = 5

FeatureFn = Callable[[np.ndarray], Features]  # indices -> their features (rows in that order)


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    heldout: np.ndarray
    seed: int


def split(accuracy: np.ndarray, train_n: int, heldout_n: int, seed: int = 0) -> Split:
    """Disjoint random train and held-out samples (module docstring); SampleSizeError, with the
    pool's size, when they do not fit in the labelled architectures outside the final test
    set."""
    if train_n < MIN_TRAIN:
        raise SampleSizeError(f"--train-n must be at least {MIN_TRAIN}, got {train_n}")
    if heldout_n < 3:
        raise SampleSizeError(f"--heldout-n must be at least 3, got {heldout_n}")
    pool = len(development_pool(accuracy))
    if train_n + heldout_n > pool:
        raise SampleSizeError(
            f"train-n {train_n:,} + heldout-n {heldout_n:,} = {train_n + heldout_n:,} exceeds "
            f"the {pool:,} labelled architectures outside the final test set"
        )
    heldout = draw_sample(accuracy, "random", heldout_n, seed=[seed, 1]).indices  # type: ignore[arg-type]
    train = draw_sample(accuracy, "random", train_n, seed=seed, exclude=heldout).indices
    if np.intersect1d(train, heldout).size:  # draw_sample's exclude guarantees it; never trust
        raise AssertionError("train and held-out samples overlap")
    return Split(train=np.asarray(train, dtype=np.int64), heldout=np.asarray(heldout), seed=seed)


def scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Kendall tau, Spearman rho, MAE and RMSE (accuracy points) of predictions."""
    from gm_lab.metrics import kendall, spearman

    predicted = np.asarray(predicted, dtype=float)
    truth = np.asarray(truth, dtype=float)
    error = predicted - truth
    return {
        "kendall": kendall(predicted, truth),
        "spearman": spearman(predicted, truth),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
    }


@dataclass
class Run:
    """One trained and evaluated predictor."""

    predictor: Predictor
    split: Split
    predicted: np.ndarray  # of split.heldout, in that order
    truth: np.ndarray
    metrics: dict[str, float]
    tuning: list[dict[str, Any]] | None = None  # the candidates `tune` scored, if it ran


def train_and_evaluate(
    space: str,
    dataset: str,
    accuracy: np.ndarray,
    features: FeatureFn,
    the_split: Split,
    model: str,
    feature_set: str,
    seed: int,
    params: dict[str, Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
    tuned: bool = False,
) -> Run:
    """Fit on the split's training architectures (after a small cross-validated search on them
    alone when `tuned`), predict and score its held-out ones."""
    train = features(the_split.train)
    heldout = features(the_split.heldout)
    tuning = None
    if tuned:
        params, tuning = tune(model, train.values, accuracy[the_split.train], seed)
    predictor = fit_predictor(
        model,
        space,
        dataset,
        feature_set,
        train.names,
        train.values,
        accuracy[the_split.train],
        the_split.train,
        seed=seed,
        params=params,
        fingerprint=fingerprint,
    )
    predicted = predictor.predict(heldout.columns(predictor.feature_names))
    truth = accuracy[the_split.heldout]
    return Run(predictor, the_split, predicted, truth, scores(predicted, truth), tuning)


def curve_sizes(
    accuracy: np.ndarray, heldout_n: int, sizes: Sequence[int] = CURVE_SIZES
) -> list[int]:
    """The learning curve's train sizes that fit next to `heldout_n` held-out architectures."""
    pool = len(development_pool(accuracy))
    kept = [n for n in sizes if n + heldout_n <= pool]
    if not kept:
        raise SampleSizeError(
            f"no train size of the curve ({', '.join(map(str, sizes))}) fits next to "
            f"heldout-n {heldout_n:,} in the {pool:,} labelled architectures"
        )
    return kept


def summarise(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    if not np.isfinite(arr).any():
        return {"mean": float("nan"), "std": float("nan"), "n": int(arr.size)}
    return {"mean": float(np.nanmean(arr)), "std": float(np.nanstd(arr)), "n": int(arr.size)}


@dataclass(frozen=True)
class CurvePoint:
    """One run of a learning curve: its train size, seed and held-out scores."""

    train_n: int
    seed: int
    metrics: dict[str, float]


def learning_curve(
    space: str,
    dataset: str,
    accuracy: np.ndarray,
    features: FeatureFn,
    heldout_n: int,
    model: str,
    feature_set: str,
    seeds: Sequence[int],
    sizes: Sequence[int] = CURVE_SIZES,
    params: dict[str, Any] | None = None,
    tuned: bool = False,
) -> Iterator[CurvePoint]:
    """The learning curve one run at a time (sizes outer, seeds inner), so that a caller can
    show progress and stop between runs; each seed's held-out sample is the same at every size
    (`split`). Sizes that do not fit next to `heldout_n` are dropped (`curve_sizes`)."""
    for n in curve_sizes(accuracy, heldout_n, sizes):
        for seed in seeds:
            the_split = split(accuracy, n, heldout_n, seed)
            run = train_and_evaluate(
                space, dataset, accuracy, features, the_split, model, feature_set, seed,
                params=params, tuned=tuned,
            )  # fmt: skip
            yield CurvePoint(n, int(seed), run.metrics)


def curve_table(points: Sequence[CurvePoint]) -> list[dict[str, Any]]:
    """Per train size (in order of first appearance): its runs and the mean / std / n of each
    score over them (`summarise`), as `gm-lab predict --curve --json` reports them."""
    by_size: dict[int, list[CurvePoint]] = {}
    for point in points:
        by_size.setdefault(point.train_n, []).append(point)
    rows = []
    for n, runs in by_size.items():
        row: dict[str, Any] = {"train_n": n, "runs": [{"seed": r.seed, **r.metrics} for r in runs]}
        for key in ("kendall", "spearman", "mae", "rmse"):
            row[key] = summarise([r.metrics[key] for r in runs])
        rows.append(row)
    return rows
