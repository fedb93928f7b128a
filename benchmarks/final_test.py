"""The headline figures, once, on the final test set (issue #17 §5).

Usage (from the repository root):

    GM_LAB_DATA=../shared/data python benchmarks/final_test.py \
        --from benchmarks/quality-mixed.json --json benchmarks/final_test.json

The final test set is fixed (`gm_lab.sampling.final_test_of`: 1,000 TSS architectures that no
search or development sample takes by default). For each dataset, every evolved expression of
the given quality record (the mixed-sample searches, one per GP seed) is scored on it with
`gm-lab score EXPR --final-test --dataset D --json`, which also scores every classic proxy on
the same architectures; the script prints Kendall τ and Spearman ρ (evolved: mean ± std over
the seeds) and the best classic proxy, and keeps each command's full JSON result (with its own
provenance, so `gm-lab rerun` can repeat any of them).

Probes: the CIFAR-10 minibatch (CIFAR-100 and ImageNet16-120 on CIFAR-10 stand-in images, as
recorded in each result), batch 64, probe seed 0; 1,000 full probes per dataset on the first
run (2 workers), reused afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def score(expr: str, dataset: str, workers: int) -> dict:
    """`gm-lab score EXPR --final-test --json` run in this process; its JSON result."""
    argv = ["score", expr, "--final-test", "--dataset", dataset, "--workers", str(workers)]
    return _provenance.gm_lab_json(argv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="quality JSON")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args()

    runs = json.loads(args.source.read_text())["runs"]
    results, rows = [], []
    for dataset in args.datasets:
        exprs = [r for r in runs if r["dataset"] == dataset and not r.get("joint")]
        if not exprs:
            raise SystemExit(f"{args.source} has no run for {dataset}")
        scored = [(r["seed"], score(r["expr"], dataset, args.workers)) for r in exprs]
        results += [{"gp_seed": seed, **result} for seed, result in scored]
        taus = [s["kendall"] for _, s in scored]
        rhos = [s["spearman"] for _, s in scored]
        classic = scored[0][1]["classic"]
        best = max(classic, key=lambda n: classic[n]["kendall"])
        rows.append(
            {
                "dataset": dataset,
                "n": scored[0][1]["n"],
                "evolved_kendall": [float(np.mean(taus)), float(np.std(taus))],
                "evolved_spearman": [float(np.mean(rhos)), float(np.std(rhos))],
                "seeds": {str(seed): s["kendall"] for seed, s in scored},
                "best_classic": best,
                "best_classic_kendall": classic[best]["kendall"],
                "best_classic_spearman": classic[best]["spearman"],
            }
        )
    gp_seeds = sorted({r["seed"] for r in runs})
    print(_provenance.header(__file__, "tss", args.datasets, {"gp": gp_seeds, "probe": 0}))
    print("| data | n | evolved τ (mean ± std, 3 GP seeds) | evolved ρ | best classic τ / ρ |")
    print("|---|---|---|---|---|")
    for row in rows:
        (tau, tau_sd), (rho, rho_sd) = row["evolved_kendall"], row["evolved_spearman"]
        print(
            f"| {row['dataset']} | {row['n']} | {tau:.3f} ± {tau_sd:.3f} | {rho:.3f} ± {rho_sd:.3f}"
            f" | {row['best_classic']} {row['best_classic_kendall']:.3f} / "
            f"{row['best_classic_spearman']:.3f} |"
        )
    if args.json:
        record = {
            "rows": rows,
            "results": results,
            "provenance": _provenance.record(
                __file__, "tss", args.datasets, {"gp": gp_seeds, "probe": 0}, final_test="scored"
            ),
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
