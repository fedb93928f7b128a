"""Seeded, reproducible samples of architectures for searching and for judging proxies.

Samples are drawn only among architectures with ground truth (finite accuracy), so a benchmark
that knows all architectures but has results for few never makes up a value.
- `random_sample`: uniform without replacement.
- `stratified_sample`: k accuracy bins (equal-width by default, equal-frequency as an option),
  n per bin, or the whole bin when it is smaller: a proxy must separate bad from good networks.
- `mixed_sample`: half stratified, the rest uniform random. A stratified sample holds few
  architectures of the dense top of the accuracy range, where most of a space lies; the random
  half makes a proxy rank those too, as the whole-space correlation demands.
- `search_heldout_split`: a search sample and a disjoint held-out sample, so a search is never
  judged on architectures it has seen.

`draw_sample`, the entry point of the CLI and the engine, never changes a request silently: fewer
than 3 architectures, more than have ground truth, or fewer than one per stratum is a
`SampleSizeError`; a stratified sample that holds fewer than asked (small bins, or `n` not a
multiple of the bins) says what it drew and why in `Sample.note`.

The final test set (`final_test_indices`): 1,000 architectures per search space, fixed once and
for all, the same for every dataset, on which the headline figures are reported once
(`gm-lab score EXPR --final-test`). They are the 1,000 indices `i` of the space whose SHA-256 of
"gm_lab final test set/<space>/<i>" is smallest: no random generator, so no library version can
change them. `draw_sample` keeps them out of every sample (search, held-out, `gm-lab score`)
unless asked with `use_final_test=True` (`SearchConfig(use_final_test=True)`), so no search and
no development run ever sees them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

import numpy as np

from gm_lab.benchmark.spaces import SPACES, space_info
from gm_lab.errors import GmLabError

SampleKind = Literal["random", "stratified", "mixed"]
SAMPLE_KINDS: tuple[SampleKind, ...] = ("random", "stratified", "mixed")
Binning = Literal["width", "frequency"]
MIN_SAMPLE = 3  # fewer architectures cannot be ranked meaningfully
FINAL_TEST_SIZE = 1_000  # per space, unless the space says otherwise (`final_test_size`)
FINAL_TEST_SALT = "gm_lab final test set"


class SampleSizeError(GmLabError, ValueError):
    """A sample of the asked size cannot be drawn (the message says why and what can be)."""


@dataclass(frozen=True)
class Sample:
    """Architecture indices (in draw order) and how they were drawn."""

    indices: np.ndarray
    kind: SampleKind | Literal["final-test"]
    seed: int
    bin_edges: np.ndarray | None = None
    bins: np.ndarray | None = field(default=None, repr=False)  # bin number of each index
    note: str = ""  # why the sample holds fewer architectures than asked, if it does

    def __len__(self) -> int:
        return len(self.indices)

    def describe(self) -> dict:
        """JSON-ready description, stored next to any result computed on this sample."""
        out: dict = {"kind": self.kind, "seed": self.seed, "n": len(self)}
        if self.bin_edges is not None and self.bins is not None:
            out["bin_edges"] = [float(e) for e in self.bin_edges]
            out["per_bin"] = np.bincount(self.bins, minlength=len(self.bin_edges) - 1).tolist()
        if self.note:
            out["note"] = self.note
        return out


@lru_cache(maxsize=8)
def _final_test(space: str, n_archs: int, size: int) -> tuple[int, ...]:
    digests = [
        hashlib.sha256(f"{FINAL_TEST_SALT}/{space}/{i}".encode()).digest() for i in range(n_archs)
    ]
    return tuple(sorted(sorted(range(n_archs), key=digests.__getitem__)[:size]))


def final_test_indices(space: str) -> np.ndarray:
    """The final test set of a search space: `FINAL_TEST_SIZE` (1,000) architecture indices,
    sorted (module docstring); the same for every dataset of the space."""
    info = space_info(space)
    size = int(getattr(info, "final_test_size", FINAL_TEST_SIZE))
    return np.array(_final_test(info.name, info.n_archs, size), dtype=int)


def final_test_of(accuracy: np.ndarray) -> np.ndarray:
    """The final test set of the space `accuracy` covers (one value per architecture of a
    space: the first space of that size); empty for arrays of any other length (made-up
    benchmarks have none)."""
    n = len(accuracy)
    space = next((name for name in SPACES if space_info(name).n_archs == n), None)
    return final_test_indices(space) if space else np.array([], dtype=int)


def final_test_sample(accuracy: np.ndarray) -> Sample:
    """The final test set's architectures with ground truth, as a sample to score once."""
    indices = final_test_of(accuracy)
    if len(indices) == 0:
        raise SampleSizeError(
            f"no final test set for a benchmark of {len(accuracy):,} architectures (none of "
            f"the spaces {', '.join(SPACES)} has that many, or it keeps none apart)"
        )
    known = indices[np.isfinite(np.asarray(accuracy, dtype=float)[indices])]
    check_sample_request(len(known), "random", MIN_SAMPLE, 1)
    note = "" if len(known) == len(indices) else f"{len(known)} of {len(indices)} have ground truth"
    return Sample(indices=known, kind="final-test", seed=0, note=note)


def development_pool(accuracy: np.ndarray, use_final_test: bool = False) -> np.ndarray:
    """The architectures a sample may take: those with ground truth, outside the final test set
    unless `use_final_test`."""
    return _candidates(accuracy, None if use_final_test else final_test_of(accuracy))


def _candidates(accuracy: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    known = np.isfinite(np.asarray(accuracy, dtype=float))
    if exclude is not None and len(exclude):
        known[np.asarray(exclude, dtype=int)] = False
    return np.flatnonzero(known)


def random_sample(
    accuracy: np.ndarray, n: int, seed: int = 0, exclude: np.ndarray | None = None
) -> Sample:
    """`n` architectures uniformly at random among those with ground truth (all if fewer)."""
    if n < 1:
        raise ValueError(f"sample size must be at least 1, got {n}")
    pool = _candidates(accuracy, exclude)
    rng = np.random.default_rng(seed)
    picked = rng.choice(pool, size=min(n, len(pool)), replace=False)
    return Sample(indices=picked, kind="random", seed=seed)


def bin_edges(values: np.ndarray, k: int, binning: Binning = "width") -> np.ndarray:
    """k+1 edges over `values`: equal-width in accuracy, or equal-frequency (quantiles)."""
    if k < 1:
        raise ValueError(f"number of bins must be at least 1, got {k}")
    if binning == "width":
        return np.linspace(values.min(), values.max(), k + 1)
    if binning == "frequency":
        return np.quantile(values, np.linspace(0.0, 1.0, k + 1))
    raise ValueError(f"unknown binning {binning!r}; choose 'width' or 'frequency'")


def assign_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin number (0..k-1) of each value; the top edge belongs to the last bin."""
    k = len(edges) - 1
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, k - 1)


def stratified_sample(
    accuracy: np.ndarray,
    n_per_bin: int,
    k: int = 10,
    seed: int = 0,
    binning: Binning = "width",
    exclude: np.ndarray | None = None,
    edges: np.ndarray | None = None,
) -> Sample:
    """`n_per_bin` architectures from each of `k` accuracy bins (the whole bin if smaller).

    Bin edges come from all architectures with ground truth (not only those left after
    `exclude`), so a search sample and its held-out sample share the same bins.
    """
    if n_per_bin < 1:
        raise ValueError(f"per-bin sample size must be at least 1, got {n_per_bin}")
    accuracy = np.asarray(accuracy, dtype=float)
    known = np.flatnonzero(np.isfinite(accuracy))
    if len(known) == 0:
        raise ValueError("no architecture has ground truth: nothing to sample")
    if edges is None:
        edges = bin_edges(accuracy[known], k, binning)
    pool = _candidates(accuracy, exclude)
    pool_bins = assign_bins(accuracy[pool], edges)
    rng = np.random.default_rng(seed)
    picked, picked_bins = [], []
    for b in range(len(edges) - 1):
        members = pool[pool_bins == b]
        take = rng.choice(members, size=min(n_per_bin, len(members)), replace=False)
        picked.append(take)
        picked_bins.append(np.full(len(take), b))
    return Sample(
        indices=np.concatenate(picked).astype(int),
        kind="stratified",
        seed=seed,
        bin_edges=edges,
        bins=np.concatenate(picked_bins).astype(int),
    )


def mixed_sample(
    accuracy: np.ndarray,
    n: int,
    k: int = 10,
    seed: int = 0,
    binning: Binning = "width",
    exclude: np.ndarray | None = None,
) -> Sample:
    """`n` architectures: a stratified half (n // 2 // k per bin, at least 1, fewer where a bin
    is small), then uniform random ones among the rest until there are `n` (all if fewer have
    ground truth). `bins` gives every index's accuracy bin, random ones included."""
    if n < 1:
        raise ValueError(f"sample size must be at least 1, got {n}")
    strata = stratified_sample(accuracy, max(1, n // 2 // k), k, seed, binning, exclude)
    taken = strata.indices if exclude is None else np.concatenate([exclude, strata.indices])
    fill = _candidates(accuracy, taken)
    rng = np.random.default_rng([seed, 1])  # its own stream: the strata stay stratified_sample's
    rest = rng.choice(fill, size=min(max(0, n - len(strata)), len(fill)), replace=False)
    edges = strata.bin_edges
    assert edges is not None and strata.bins is not None
    accuracy = np.asarray(accuracy, dtype=float)
    return Sample(
        indices=np.concatenate([strata.indices, rest]).astype(int),
        kind="mixed",
        seed=seed,
        bin_edges=edges,
        bins=np.concatenate([strata.bins, assign_bins(accuracy[rest], edges)]).astype(int),
    )


def draw_sample(
    accuracy: np.ndarray,
    kind: SampleKind,
    n: int,
    seed: int = 0,
    k: int = 10,
    binning: Binning = "width",
    exclude: np.ndarray | None = None,
    use_final_test: bool = False,
) -> Sample:
    """One entry point for CLI and engine: `n` in total (stratified: n // k per bin), never
    from the final test set unless `use_final_test`.

    Raises SampleSizeError rather than drawing another size than asked (module docstring).
    """
    if kind not in SAMPLE_KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; choose one of {', '.join(SAMPLE_KINDS)}")
    kept_out = "" if exclude is None else " outside those excluded or already taken"
    final = np.array([], dtype=int) if use_final_test else final_test_of(accuracy)
    if len(final):
        exclude = final if exclude is None else np.concatenate([final, exclude]).astype(int)
        kept_out = " outside the final test set" + (kept_out and " and those excluded or taken")
    check_sample_request(len(_candidates(accuracy, exclude)), kind, n, k, kept_out)
    if kind == "random":
        return random_sample(accuracy, n, seed, exclude)
    if kind == "stratified":
        sample = stratified_sample(accuracy, n // k, k, seed, binning, exclude)
        return _with_note(sample, n, n // k)
    return mixed_sample(accuracy, n, k, seed, binning, exclude)


def check_sample_request(
    available: int, kind: SampleKind, n: int, k: int, kept_out: str = ""
) -> None:
    """SampleSizeError, with the reason and what can be asked instead, for an impossible size.
    `kept_out`: which architectures were not available, in words (" outside ...")."""
    if n < MIN_SAMPLE:
        raise SampleSizeError(
            f"a sample needs at least {MIN_SAMPLE} architectures to rank, {n} asked"
        )
    if n > available:
        raise SampleSizeError(
            f"{n:,} architectures asked, but only {available:,} have ground truth{kept_out}; "
            f"ask for at most {available:,}"
        )
    if kind != "random" and n < k:
        raise SampleSizeError(
            f"a {kind} sample of {n} over {k} accuracy bins takes no architecture per bin; "
            f"ask for at least {k} or use fewer bins"
        )


def _with_note(sample: Sample, n: int, per_bin: int) -> Sample:
    """Say why a stratified sample holds fewer than `n` architectures (if it does)."""
    if len(sample) == n or sample.bins is None:
        return sample
    k = (
        int(sample.bins.max(initial=0)) + 1
        if sample.bin_edges is None
        else len(sample.bin_edges) - 1
    )
    counts = np.bincount(sample.bins, minlength=k)
    small = [f"bin {b}: {c}" for b, c in enumerate(counts) if c < per_bin]
    reasons = []
    if per_bin * k != n:
        reasons.append(f"{n} over {k} bins is {per_bin} per bin ({per_bin * k} at most)")
    if small:
        reasons.append(f"{len(small)} bins hold fewer than {per_bin} ({', '.join(small)})")
    note = f"drew {len(sample)} of the {n} asked: {'; '.join(reasons)}"
    return replace(sample, note=note)


def search_heldout_split(
    accuracy: np.ndarray,
    kind: SampleKind,
    n_search: int,
    n_heldout: int,
    seed: int = 0,
    k: int = 10,
    binning: Binning = "width",
) -> tuple[Sample, Sample]:
    """A search sample and a held-out sample of the same kind that share no architecture."""
    search = draw_sample(accuracy, kind, n_search, seed, k, binning)
    heldout = draw_sample(accuracy, kind, n_heldout, seed + 1, k, binning, exclude=search.indices)
    return search, heldout
