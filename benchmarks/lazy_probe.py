"""Lazy probing and pass costs (issue #18 §1-2): what an expression costs per architecture when
only the passes its terminals need run.

Usage (from the repository root):

    python benchmarks/lazy_probe.py --n 20 --seed 0 --json benchmarks/lazy_probe.json
    python benchmarks/lazy_probe.py --n 20 --seed 0 --ship   # also the shipped pass costs

Over N random TSS architectures (CIFAR-10 network, batch 64, the probe's CIFAR-10 minibatch,
one torch thread, channels_last), interleaved per architecture so the machine's drift hits
every row alike:

- reference: one plain forward+backward of the cross-entropy (network built beforehand);
- lazy probes (`probe_architecture(..., proxies=..., statistics=...)`, what `gm-lab score` runs
  for an architecture not cached) of a forward-only expression (naswot), a one-backward
  expression (snip; and zico, which adds its half-batch split) and a per-layer statistic
  expression (`sum(snip_l)`, one backward);
- the full probe (every statistic and shared proxy: what `gm-lab probe` caches).

Each row: mean seconds per architecture (network build included) and that as a multiple of
the reference. Then `measure_pass_costs` over the same architectures: the per-pass costs that
`gm-lab costs` and the cost-aware search use; `--ship` writes them (with this run's
provenance) to gm_lab/embedded/pass_costs.json, the estimate gm_lab uses on a machine that has
not measured its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance

from gm_lab.benchmark import Benchmark
from gm_lab.expressions.cost import SHIPPED
from gm_lab.probe.costs import measure_pass_costs, plain_step_seconds
from gm_lab.probe.probe import default_inputs, probe_architecture, shared_proxies
from gm_lab.probe.record import ProbeConfig

ROWS = {  # label -> (shared proxies, statistics) of the lazy probe
    "forward only: naswot": (["naswot"], []),
    "one backward: snip": (["snip"], []),
    "one backward: zico": (["zico"], []),
    "one backward: sum(snip_l)": ([], ["snip_l"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="random TSS architectures")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--json", type=Path, help="write the record here")
    parser.add_argument("--ship", action="store_true", help="write the shipped pass costs")
    args = parser.parse_args()

    torch.set_num_threads(1)
    bench = Benchmark.load("tss")
    config = ProbeConfig()
    batch, noise = default_inputs(config)
    rng = np.random.default_rng(args.seed)
    picks = [int(i) for i in rng.choice(bench.n_archs, size=args.n, replace=False)]
    archs = [bench.arch(i) for i in picks]
    seconds: dict[str, list[float]] = {"reference": [], "full probe": []}
    seconds.update({label: [] for label in ROWS})
    plain_step_seconds("tss", archs[0], config, batch.images, batch.labels)  # warm-up
    for index, arch in zip(picks, archs, strict=True):
        seconds["reference"].append(
            plain_step_seconds("tss", arch, config, batch.images, batch.labels)
        )
        for label, (proxies, stats) in ROWS.items():
            start = time.perf_counter()
            probe_architecture(index, arch, config, batch, noise, proxies=proxies, statistics=stats)
            seconds[label].append(time.perf_counter() - start)
        start = time.perf_counter()
        probe_architecture(index, arch, config, batch, noise, proxies=shared_proxies())
        seconds["full probe"].append(time.perf_counter() - start)
    reference = float(np.mean(seconds["reference"]))
    rows = {
        label: {"seconds": float(np.mean(v)), "multiple": float(np.mean(v)) / reference}
        for label, v in seconds.items()
    }
    costs = measure_pass_costs(archs, config, progress=False)
    provenance = _provenance.record(__file__, "tss", ["cifar10"], {"sample": args.seed})
    print(_provenance.header(__file__, "tss", ["cifar10"], {"sample": args.seed}))
    print(f"| run ({args.n} random TSS archs, 1 thread) | s / arch | × forward+backward |")
    print("|---|---|---|")
    for label, row in rows.items():
        print(f"| {label} | {row['seconds']:.3f} | {row['multiple']:.2f} |")
    print("\npass costs (measure_pass_costs, same architectures):")
    for name, value in sorted(costs.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<22} {value:.4f} s  {value / costs.reference:.2f} x")
    record = {
        "n": args.n,
        "indices": picks,
        "rows": rows,
        "pass_costs": costs.to_json(),
        "provenance": provenance,
    }
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    if args.ship:
        entry = {**costs.to_json(), "about": {**costs.about, "provenance": provenance}}
        SHIPPED.write_text(json.dumps({"costs": [entry]}, indent=1) + "\n")
        print(f"wrote {SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
