"""Whole-space rank correlation (issue #18 §4): proxies scored on every TSS architecture, at the
cost of the passes they need.

Usage (from the repository root):

    GM_LAB_DATA=../shared/data python benchmarks/whole_space.py sed_like naswot \
        --dataset cifar10 --workers 2 --json benchmarks/whole_space.json

For each proxy or expression given: `gm-lab score EXPR --all --dataset D --json` (lazy probing:
only the passes its terminals need; what is cached is reused, an interrupted run resumes), then
Kendall τ-b and Spearman ρ over all 15,625 architectures with ground truth, the wall time of
that command on this machine (2 shared cores; probing included unless it was cached) and the
expression's modelled cost per architecture. The probe: CIFAR-10 minibatch, batch 64, probe
seed 0 (gm-lab score's defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance


def score_all(expr: str, dataset: str, workers: int) -> tuple[dict, float]:
    """`gm-lab score EXPR --all --json` in this process: its result and wall seconds."""
    start = time.perf_counter()
    argv = ["score", expr, "--all", "--dataset", dataset, "--workers", str(workers)]
    return _provenance.gm_lab_json(argv), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("proxies", nargs="+", help="proxy names or expressions")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args()

    rows, results = [], []
    for expr in args.proxies:
        result, seconds = score_all(expr, args.dataset, args.workers)
        result.pop("scores"), result.pop("indices"), result.pop("test_accuracy")
        results.append(result)
        rows.append({
            "proxy": expr, "n": result["n"], "kendall": result["kendall"],
            "spearman": result["spearman"], "wall_seconds": seconds,
            "probed": result["probed"], "cost": result["cost"],
        })  # fmt: skip
    print(_provenance.header(__file__, "tss", [args.dataset], {"probe": 0}, final_test="included"))
    print("| proxy | n | Kendall τ | Spearman ρ | wall (s) | probed | modelled s / arch |")
    print("|---|---:|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['proxy']} | {r['n']:,} | {r['kendall']:.3f} | {r['spearman']:.3f} | "
            f"{r['wall_seconds']:.0f} | {r['probed']:,} | {r['cost']['seconds_per_arch']:.3f} |"
        )
    if args.json:
        record = {
            "rows": rows,
            "results": results,
            "provenance": _provenance.record(
                __file__, "tss", [args.dataset], {"probe": 0}, final_test="included"
            ),
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
