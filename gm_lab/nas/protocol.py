"""The zero-cost NAS protocol on a benchmark, as a pure function of score vectors.

Standard protocol (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021;
Mellor et al., NASWOT, ICML 2021): in each of `runs` runs draw `n` architectures uniformly
without replacement from the pool (those with ground truth), keep the candidates that meet the
hardware limits, pick the one a method scores best and report that architecture's true test
accuracy; mean and standard deviation over runs.

Why scores come in as whole-space vectors: every run draws from the same space, so a method's
score is computed once per architecture (the union of all runs' candidates, `needed`) and each
run only indexes it. Run r draws with `numpy.random.default_rng([seed, r])`, so a run's draw is
the same whatever the number of runs, and runs are independent draws. No torch, no CLI.

Methods: every entry of `scores` (higher is better: negate a lower-is-better score), "random"
(a uniform pick among the candidates, its own seeded stream) and "oracle" (the candidate of the
best test accuracy: the most a method could get from that draw). Ties in a score go to the
candidate drawn first, which is itself random. A failed score (NaN, +-inf: a network whose
output ignores its input) ranks below every finite one, as in gm_lab.metrics, so every method
picks in every run that has candidates and all methods are averaged over the same runs; only a
run whose draw holds no candidate meeting the limits has no pick (NO_PICK, left out of means).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gm_lab.errors import GmLabError

RANDOM = "random"
ORACLE = "oracle"
NO_PICK = -1  # a run without a pick (no candidate met the limits, or none had a score)


class ProtocolError(GmLabError, ValueError):
    """Arguments the protocol cannot run with (the message says which and why)."""


@dataclass(frozen=True)
class Draws:
    """Each run's draw of `n` architectures and the candidates among them meeting the limits."""

    drawn: list[np.ndarray]  # run -> int64[n], in draw order
    candidates: list[np.ndarray]  # run -> the drawn indices meeting the limits, draw order kept

    @property
    def runs(self) -> int:
        return len(self.drawn)

    def needed(self) -> np.ndarray:
        """The union of all runs' candidates (sorted): the architectures a method must score."""
        if not self.candidates:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(self.candidates)).astype(np.int64)


def draw(
    pool: Sequence[int] | np.ndarray,
    n: int,
    runs: int,
    seed: int = 0,
    allowed: np.ndarray | None = None,
) -> Draws:
    """Draw `n` of `pool` per run (run r: `default_rng([seed, r])`) and keep those `allowed`
    (a boolean mask over the whole space; None: no limit)."""
    pool = np.asarray(pool, dtype=np.int64)
    if runs < 1:
        raise ProtocolError(f"runs must be at least 1, got {runs}")
    if n < 1:
        raise ProtocolError(f"n must be at least 1, got {n}")
    if n > len(pool):
        raise ProtocolError(
            f"n = {n:,} is larger than the space: {len(pool):,} architectures have ground truth"
        )
    drawn = [
        np.random.default_rng([seed, run]).choice(pool, size=n, replace=False)
        for run in range(runs)
    ]
    candidates = drawn if allowed is None else [d[np.asarray(allowed)[d]] for d in drawn]
    return Draws(drawn=drawn, candidates=[np.asarray(c, dtype=np.int64) for c in candidates])


def pick_best(scores: np.ndarray, candidates: Sequence[np.ndarray]) -> np.ndarray:
    """Per run, the candidate of the highest score, non-finite scores ranking below every
    finite one and ties going to the first drawn (NO_PICK only for a run without candidates)."""
    scores = np.asarray(scores, dtype=float)
    picks = np.full(len(candidates), NO_PICK, dtype=np.int64)
    for run, cands in enumerate(candidates):
        if len(cands):
            values = scores[cands]
            picks[run] = cands[int(np.argmax(np.where(np.isfinite(values), values, -np.inf)))]
    return picks


def pick_random(candidates: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    """Per run, a uniform pick among its candidates (run r: `default_rng([seed, r, 1])`, a
    stream apart from the draw's)."""
    picks = np.full(len(candidates), NO_PICK, dtype=np.int64)
    for run, cands in enumerate(candidates):
        if len(cands):
            picks[run] = cands[np.random.default_rng([seed, run, 1]).integers(len(cands))]
    return picks


@dataclass(frozen=True)
class MethodResult:
    """One method's picks over the runs and their figures (NaN where a run has no pick)."""

    name: str
    picks: np.ndarray  # int64[runs], NO_PICK where the run has none
    accuracy: np.ndarray  # float[runs]: test accuracy of each pick
    figures: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. latency of each pick

    @property
    def n_picked(self) -> int:
        return int((self.picks != NO_PICK).sum())

    def summary(self) -> dict[str, Any]:
        """Mean and std (ddof=1) of the picks' accuracy and mean of each figure over the runs
        with a pick (NaN when fewer than two for the std)."""
        out: dict[str, Any] = {"runs_with_pick": self.n_picked, **_mean_std(self.accuracy)}
        for name, values in self.figures.items():
            stats = _mean_std(values)
            out[f"{name}_mean"], out[f"{name}_std"] = stats["mean"], stats["std"]
        return out


@dataclass(frozen=True)
class NasResult:
    """The protocol's outcome: the draws, each method's picks, and the candidate pools."""

    n: int
    runs: int
    seed: int
    draws: Draws
    methods: dict[str, MethodResult]
    pool_accuracy: np.ndarray  # float[runs]: mean test accuracy of each run's candidates

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: method.summary() for name, method in self.methods.items()}

    def per_run(self) -> list[dict[str, Any]]:
        """One entry per run: candidates and, per method, the pick and its figures."""
        out = []
        for run in range(self.runs):
            entry: dict[str, Any] = {
                "run": run,
                "candidates": len(self.draws.candidates[run]),
                "pool_mean_accuracy": float(self.pool_accuracy[run]),
                "picks": {},
            }
            for name, method in self.methods.items():
                index = int(method.picks[run])
                pick: dict[str, Any] = {"index": None if index == NO_PICK else index}
                pick["accuracy"] = float(method.accuracy[run])
                pick.update({k: float(v[run]) for k, v in method.figures.items()})
                entry["picks"][name] = pick
            out.append(entry)
        return out


def run_protocol(
    scores: Mapping[str, np.ndarray],
    accuracy: np.ndarray,
    n: int,
    runs: int,
    seed: int = 0,
    allowed: np.ndarray | None = None,
    figures: Mapping[str, np.ndarray] | None = None,
    draws: Draws | None = None,
) -> NasResult:
    """Run the protocol for every method in `scores` (whole-space vectors, higher is better;
    only the candidates' entries are read) plus "random" and "oracle".

    `accuracy`: test accuracy per architecture (NaN: no ground truth, never drawn). `allowed`:
    boolean mask of the architectures meeting the limits (None: all). `figures`: per-arch
    values reported for each pick (latency, energy). `draws`: from `draw` with the same
    arguments, when the caller drew first to know which architectures to score.
    """
    accuracy = np.asarray(accuracy, dtype=float)
    for name in (RANDOM, ORACLE):
        if name in scores:
            raise ProtocolError(f"{name!r} is a built-in method; name the scores otherwise")
    if allowed is not None and len(allowed) != len(accuracy):
        raise ProtocolError(f"allowed has {len(allowed)} entries, accuracy {len(accuracy)}")
    for name, values in scores.items():
        if len(values) != len(accuracy):
            raise ProtocolError(f"scores of {name!r}: {len(values)} entries, not {len(accuracy)}")
    pool = np.flatnonzero(np.isfinite(accuracy))
    if draws is None:
        draws = draw(pool, n, runs, seed, allowed)
    elif draws.runs != runs or any(len(d) != n for d in draws.drawn):
        raise ProtocolError("the draws given were not made with this n and runs")
    figures = dict(figures or {})

    def result(name: str, picks: np.ndarray) -> MethodResult:
        got = picks != NO_PICK
        acc = np.full(len(picks), np.nan)
        acc[got] = accuracy[picks[got]]
        per_pick = {}
        for key, values in figures.items():
            column = np.full(len(picks), np.nan)
            column[got] = np.asarray(values, dtype=float)[picks[got]]
            per_pick[key] = column
        return MethodResult(name, picks, acc, per_pick)

    methods = {
        name: result(name, pick_best(values, draws.candidates)) for name, values in scores.items()
    }
    methods[RANDOM] = result(RANDOM, pick_random(draws.candidates, seed))
    methods[ORACLE] = result(ORACLE, pick_best(accuracy, draws.candidates))
    pool_accuracy = np.array(
        [accuracy[c].mean() if len(c) else np.nan for c in draws.candidates], dtype=float
    )
    return NasResult(n, runs, seed, draws, methods, pool_accuracy)


def _mean_std(values: np.ndarray) -> dict[str, float]:
    """Mean and sample std (ddof=1) of the finite values; NaN where too few."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    mean = float(np.mean(finite)) if finite.size else float("nan")
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
    return {"mean": mean, "std": std}
