"""Zero-cost NAS with hardware limits (`gm-lab nas`, gm_lab.nas.protocol) for several proxies,
datasets and HW-NAS-Bench limits: one markdown table and a JSON record.

Usage (from the repository root; data-free proxies by default, seconds on 2 cores):

    python benchmarks/nas.py --json benchmarks/nas.json

Protocol (that of `gm-lab nas`): per run r of --runs (seed [--seed, r]), draw --n architectures of
NATS-Bench TSS at random, keep those meeting the limit (HW-NAS-Bench latency of the device for
that dataset), pick the best by each method and take its test accuracy (200-epoch, mean over
seeds); mean ± std over runs. Methods: each --proxies entry, then the baselines random, params
(the table's parameter count) and oracle (best candidate); --probed-baselines adds naswot and
meco. Every proxy sees the same draws (same seed), so the rows of a block are paired.

A limit is `device:MS` (milliseconds) or `device:qPCT`, the PCT-th percentile of the device's
latency over the space for that dataset (ImageNet16-120 networks run faster than CIFAR ones,
so one ms figure would not bind alike); `none` for no limit.

Proxies that are not data-free (anything but params, sed_like) probe every candidate: slow on a
CPU; give them only when that is wanted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import gm_lab_json, header, record

from gm_lab.benchmark import Benchmark

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
LIMITS = ("none", "edgegpu:q50", "raspi4:q25", "pixel3:q50", "fpga:q10")


def resolve_limit(bench: Benchmark, dataset: str, limit: str) -> tuple[str, float] | None:
    """(device, ms) of a `device:MS` / `device:qPCT` limit on `dataset`; None for "none"."""
    if limit == "none":
        return None
    device, _, value = limit.partition(":")
    if value.startswith("q"):
        latency = bench.hardware(dataset, device)
        return device, float(np.round(np.nanpercentile(latency, float(value[1:])), 3))
    return device, float(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxies", default="sed_like,params", help="comma-separated")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    parser.add_argument("--limits", default=",".join(LIMITS), help="device:MS, device:qPCT, none")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probed-baselines", action="store_true", help="add naswot and meco")
    parser.add_argument("--workers", type=int, default=2, help="probe workers (probed proxies)")
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args()

    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    limits = [x.strip() for x in args.limits.split(",") if x.strip()]
    baselines = ["random", "params", *(["naswot", "meco"] if args.probed_baselines else [])]
    bench = Benchmark.load("tss", progress=False)
    seeds = {"draw": args.seed}
    print(header(__file__, "tss", datasets, seeds, bench=bench, final_test="included"))

    blocks = []
    for dataset in datasets:
        for limit in limits:
            resolved = resolve_limit(bench, dataset, limit)
            common = ["nas", "--dataset", dataset, "--n", str(args.n), "--runs", str(args.runs)]
            common += ["--seed", str(args.seed), "--workers", str(args.workers)]
            if resolved is not None:
                common += ["--device", resolved[0], "--max-latency-ms", str(resolved[1])]
            methods: dict[str, Any] = {}
            result: dict[str, Any] = {}
            for i, proxy in enumerate(proxies):
                wanted = [*baselines, "oracle"] if i == 0 else ["oracle"]
                result = gm_lab_json([*common, "--proxy", proxy, "--baselines", ",".join(wanted)])
                methods.setdefault(proxy, result["methods"][proxy])
                for name in wanted:
                    methods.setdefault(name, result["methods"][name])
            order = [*proxies, *(b for b in baselines if b not in proxies), "oracle"]
            methods = {name: methods[name] for name in order}
            blocks.append(
                {
                    "dataset": dataset,
                    "limit": limit,
                    "device": None if resolved is None else resolved[0],
                    "max_latency_ms": None if resolved is None else resolved[1],
                    "meeting_limits": result["meeting_limits"],
                    "candidates_per_run_mean": result["candidates_per_run_mean"],
                    "pool_mean_accuracy": result["pool_mean_accuracy"],
                    "methods": methods,
                    "command": ["gm-lab", *common, "--proxy", proxies[0]],
                }
            )
    print(markdown(blocks, args.n, args.runs))
    if args.json:
        provenance = record(__file__, "tss", datasets, seeds, bench=bench, final_test="included")
        payload = {"n": args.n, "runs": args.runs, "seed": args.seed, "proxies": proxies}
        payload.update(blocks=blocks, provenance=provenance)
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def markdown(blocks: list[dict[str, Any]], n: int, runs: int) -> str:
    """One row per (dataset, limit, method): accuracy of the picks, gap to the oracle, the
    picks' latency and energy on the limit's device (edgegpu without a limit)."""

    def pm(row: dict[str, Any], key: str, digits: int) -> str:
        mean, std = row.get(f"{key}mean"), row.get(f"{key}std")
        if mean is None:
            return "—"
        return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"

    lines = [
        f"| dataset | limit (candidates/run of {n:,}) | method | test acc (%) | gap to oracle | "
        "latency (ms) | energy (mJ) |",
        "|---|---|---|---|---:|---|---|",
    ]
    for block in blocks:
        limit = (
            "none"
            if block["device"] is None
            else f"{block['device']} ≤ {block['max_latency_ms']:g} ms ({block['limit']})"
        )
        where = f"{limit} ({block['candidates_per_run_mean']:.0f})"
        oracle = block["methods"]["oracle"]["mean"]
        for name, row in block["methods"].items():
            gap = "" if name == "oracle" else f"{row['mean'] - oracle:+.2f}"
            lines.append(
                f"| {block['dataset']} | {where} | {name} | {pm(row, '', 2)} | {gap} | "
                f"{pm(row, 'latency_ms_', 2)} | {pm(row, 'energy_mJ_', 1)} |"
            )
    lines.append(f"\n{runs} runs each; mean ± std over runs.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
