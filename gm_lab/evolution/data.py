"""The architectures a search sees and is judged on, probed once and loaded as arrays.

- One search sample and one disjoint held-out sample, drawn like `gm-lab score` draws (same
  seed, kind, size and bins give the same search sample), so `gm-lab score EXPR` reproduces a
  search's correlation. With several datasets the samples are drawn on the first dataset's
  accuracy among architectures with results on all of them; every dataset scores the same
  architectures against its own accuracy.
- Each dataset has its own `ProbeConfig`, hence its own cache; `probe_many` fills what is
  missing in worker processes (`workers` >= 2), so no torch work runs in a search thread.
- Other datasets of the space whose cache (same probe settings) already holds a sample are
  loaded too, for reporting only: how well a proxy evolved on CIFAR-10 transfers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gm_lab.benchmark import DATASETS, Benchmark
from gm_lab.evolution.config import SearchConfig
from gm_lab.evolution.fitness import Role, Split
from gm_lab.probe.cache import ProbeCache
from gm_lab.sampling import Sample, draw_sample


@dataclass
class SearchData:
    """Samples, per-dataset splits and what preparing them took."""

    search_sample: Sample
    heldout_sample: Sample | None
    splits: list[Split]
    probe: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> summary
    seconds: float = 0.0

    def select(self, role: Role | None = None, searched: bool | None = None) -> list[Split]:
        """The splits of one role and/or only the searched (or only the reported) datasets."""
        return [
            s
            for s in self.splits
            if (role is None or s.role == role) and (searched is None or s.searched == searched)
        ]

    @property
    def search_splits(self) -> list[Split]:
        """What the fitness is computed on."""
        return self.select("search", searched=True)

    def samples_described(self) -> dict[str, Any]:
        out = {"search": self.search_sample.describe()}
        if self.heldout_sample is not None:
            out["heldout"] = self.heldout_sample.describe()
        return out


def sampling_accuracy(bench: Benchmark, datasets: tuple[str, ...]) -> np.ndarray:
    """The first dataset's accuracy, NaN where any of `datasets` lacks a result."""
    accuracy = bench.accuracy(datasets[0]).copy()
    for dataset in datasets[1:]:
        accuracy[~np.isfinite(bench.accuracy(dataset))] = np.nan
    return accuracy


def draw_samples(bench: Benchmark, config: SearchConfig) -> tuple[Sample, Sample | None]:
    """The search sample (exactly `gm-lab score`'s sample for the same settings) and the
    disjoint held-out sample (None when `n_heldout` is 0), neither taking `config.exclude` nor,
    unless `config.use_final_test`, the final test set."""
    accuracy = sampling_accuracy(bench, config.datasets)
    kept_apart = np.asarray(config.exclude, dtype=int)
    final = config.use_final_test
    search = draw_sample(
        accuracy,
        config.sample,
        config.n_search,
        config.seed,
        k=config.bins,
        exclude=kept_apart,
        use_final_test=final,
    )
    if config.n_heldout == 0:
        return search, None
    heldout = draw_sample(
        accuracy,
        config.heldout_kind,
        config.n_heldout,
        config.seed + 1,
        k=config.bins,
        exclude=np.concatenate([kept_apart, search.indices]),
        use_final_test=final,
    )
    return search, heldout


def load_data(
    config: SearchConfig, bench: Benchmark | None = None, progress: bool = False
) -> SearchData:
    """Draw the samples, probe what the caches lack, and load every split as arrays."""
    start = time.perf_counter()
    bench = bench if bench is not None else Benchmark.load(config.space, progress=progress)
    search, heldout = draw_samples(bench, config)
    samples: list[tuple[Role, Sample]] = [("search", search)]
    if heldout is not None:
        samples.append(("heldout", heldout))
    wanted = np.concatenate([s.indices for _, s in samples])
    root = Path(config.cache_dir) if config.cache_dir else None
    splits: list[Split] = []
    probe: dict[str, dict[str, Any]] = {}
    from gm_lab.probe.runner import probe_many  # torch: only when the search has to probe

    for dataset in config.datasets:
        cache = ProbeCache(config.probe_config(dataset), root)
        missing = len(cache.missing(wanted))
        began = time.perf_counter()
        probe_many(
            bench,
            wanted,
            cache.config,
            workers=config.workers,
            scheduler=config.scheduler,
            progress=progress,
            cache=cache,
            proxies=config.standalone,
        )
        probe[dataset] = {
            "probed": missing,
            "reused": len(wanted) - missing,
            "seconds": round(time.perf_counter() - began, 2),
            "cache": str(cache.folder),
            "provenance": (cache.meta() or {}).get("provenance"),
        }
        truth = bench.accuracy(dataset)
        for role, sample in samples:
            arrays = cache.load_arrays(sample.indices, config.standalone)
            provenance = probe[dataset]["provenance"]
            splits.append(Split(dataset, role, arrays, truth[sample.indices], True, provenance))
    for dataset in DATASETS:
        if dataset not in config.datasets:
            splits.extend(_reported_splits(bench, config, dataset, samples, root))
    return SearchData(search, heldout, splits, probe, time.perf_counter() - start)


def _reported_splits(
    bench: Benchmark,
    config: SearchConfig,
    dataset: str,
    samples: list[tuple[Role, Sample]],
    root: Path | None,
) -> list[Split]:
    """Splits of a dataset the search does not use, for those samples its cache already holds
    (with ground truth for all of them); never probes."""
    cache = ProbeCache(config.probe_config(dataset), root)
    if not cache.records_dir.is_dir():
        return []
    truth = bench.accuracy(dataset)
    found = []
    for role, sample in samples:
        if (
            len(cache.missing(sample.indices))
            or cache.missing_standalone(config.standalone, sample.indices)
            or not np.isfinite(truth[sample.indices]).all()
        ):
            continue
        arrays = cache.load_arrays(sample.indices, config.standalone)
        provenance = (cache.meta() or {}).get("provenance")
        found.append(Split(dataset, role, arrays, truth[sample.indices], False, provenance))
    return found
