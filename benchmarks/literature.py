"""Classic proxies against the literature: Spearman ρ with test accuracy on a random TSS sample.

Reference: Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021), Table 1, all
of NAS-Bench-201 at batch 64 (CIFAR-10: synflow 0.74, jacov 0.73, snip 0.60, grad_norm 0.59,
grasp 0.51, fisher 0.36; NASWOT ~0.78-0.81 and #params ~0.75 from their own papers).

Run (probes what is not cached, ~0.5 s per architecture per worker on 2 cores):
    GM_LAB_DATA=../shared/data python benchmarks/literature.py --n 1000 --workers 2
"""

from __future__ import annotations

import argparse
import math

from gm_lab.benchmark import Benchmark, normalise_dataset
from gm_lab.metrics import kendall, spearman
from gm_lab.probe.record import ProbeConfig
from gm_lab.probe.runner import probe_many
from gm_lab.sampling import random_sample

PUBLISHED_SPEARMAN = {  # CIFAR-10, CIFAR-100, ImageNet16-120
    "synflow": (0.74, 0.76, 0.75),
    "jacov": (0.73, 0.70, 0.70),
    "snip": (0.60, 0.64, 0.58),
    "grad_norm": (0.59, 0.64, 0.58),
    "grasp": (0.51, 0.55, 0.55),
    "fisher": (0.36, 0.39, 0.33),
    "naswot": (0.80, None, None),
    "params": (0.75, None, None),
}
DATASET_COLUMN = {"cifar10": 0, "cifar100": 1, "ImageNet16-120": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=normalise_dataset, default="cifar10")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="sample seed")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    bench = Benchmark.load("tss")
    accuracy = bench.accuracy(args.dataset)
    sample = random_sample(accuracy, args.n, seed=args.seed)
    config = ProbeConfig(space="tss", dataset=args.dataset, batch_size=args.batch_size)
    cache = probe_many(bench, sample.indices, config, workers=args.workers)
    arrays = cache.load_arrays(sample.indices)
    truth = accuracy[arrays.indices]
    column = DATASET_COLUMN[args.dataset]
    inputs = (cache.meta() or {}).get("provenance", {})

    print(f"TSS {args.dataset}, random sample n={len(sample)} (seed {args.seed}), ")
    print(f"batch {args.batch_size}, inputs: {inputs.get('source', '?')}\n")
    print("| proxy | Spearman ρ | Kendall τ | published ρ | difference |")
    print("|---|---|---|---|---|")
    rows = sorted(arrays.proxies, key=lambda p: -abs(spearman(arrays.proxies[p], truth)))
    for proxy in rows:
        rho = spearman(arrays.proxies[proxy], truth)
        tau = kendall(arrays.proxies[proxy], truth)
        published = PUBLISHED_SPEARMAN.get(proxy, (None, None, None))[column]
        pub = "" if published is None else f"{published:.2f}"
        diff = "" if published is None or math.isnan(rho) else f"{rho - published:+.2f}"
        print(f"| {proxy} | {rho:.3f} | {tau:.3f} | {pub} | {diff} |")


if __name__ == "__main__":
    main()
