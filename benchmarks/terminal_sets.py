"""Which terminals, which objective: held-out τ and cost of evolved proxies on NATS-Bench TSS
(issue #18 §3).

For each dataset, terminal set (`all`: statistics and classic proxies; `stats`: the per-layer
statistics only, GreenMachine/EZNAS-style discovery; `proxies`: the classic proxies only) and
objective (`tau`: the correlation alone; `tau+cost`: NSGA-II on the correlation and the seconds
per architecture the expression's probe passes take), one `gm-lab evolve` search per GP seed on
the same samples (stratified search and held-out samples by default, as `gm-lab evolve` draws
them, seed 0; the probes are cached, so every run after the first only evolves). Recorded per
run: the best expression (the hall of fame's first) with its search and held-out Kendall τ and
its cost in seconds per architecture and as a multiple of one forward+backward
(gm_lab.expressions.cost, this machine's measured pass costs or the shipped ones: the JSON names
which); for tau+cost also the whole Pareto front and its best held-out τ.

    python benchmarks/terminal_sets.py --datasets cifar10 --seeds 0 1 2 --out terminal_sets.json

prints a provenance line and a markdown table and writes every run's numbers as JSON with a
`"provenance"` block (benchmarks/_provenance.py). A tiny smoke run (seconds, 16x16 inputs):

    python benchmarks/terminal_sets.py --datasets ImageNet16-120 --sample random --n 6 \\
        --heldout-n 3 --pop 6 --gens 1 --batch-size 8 --workers 0 --out /tmp/terminal_sets.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _provenance import describe, record

from gm_lab.benchmark import DATASETS, Benchmark, normalise_dataset
from gm_lab.evolution import CostFunction, Search, SearchConfig
from gm_lab.evolution.config import OBJECTIVES, TERMINAL_SETS
from gm_lab.expressions.cost import load_pass_costs
from gm_lab.sampling import SAMPLE_KINDS

SPACE = "tss"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Held-out Kendall τ and cost per architecture of proxies evolved from each "
        "terminal set (all / stats / proxies) under each objective (tau / tau+cost) on "
        "NATS-Bench TSS; prints a markdown table and writes JSON with provenance.",
    )
    parser.add_argument(
        "--datasets", nargs="+", default=["cifar10"], help=f"of {list(DATASETS)} (cifar10)"
    )
    parser.add_argument(
        "--terminal-sets", nargs="+", choices=TERMINAL_SETS, default=list(TERMINAL_SETS)
    )
    parser.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=list(OBJECTIVES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="GP seeds (0)")
    parser.add_argument(
        "--sample", choices=SAMPLE_KINDS, default="stratified", help="sample kind (stratified)"
    )
    parser.add_argument("--n", type=int, default=200, help="search sample size (200)")
    parser.add_argument("--heldout-n", type=int, default=200, help="held-out sample size (200)")
    parser.add_argument(
        "--heldout-sample", choices=SAMPLE_KINDS, help="held-out sample kind (as --sample)"
    )
    parser.add_argument("--pop", type=int, default=100, help="population (100)")
    parser.add_argument("--gens", type=int, default=30, help="generations (30)")
    parser.add_argument("--batch-size", type=int, default=64, help="probe minibatch (64)")
    parser.add_argument("--workers", type=int, default=2, help="probe worker processes (2)")
    parser.add_argument("--out", type=Path, help="write the JSON record here")
    args = parser.parse_args(argv)
    try:
        args.datasets = [normalise_dataset(d) for d in args.datasets]
    except ValueError as exc:
        parser.error(str(exc))
    return args


def run_one(args: argparse.Namespace, bench: Benchmark, dataset: str, terminals: str,
            objective: str, seed: int) -> dict[str, Any]:  # fmt: skip
    """One search and what the table and the JSON keep of it."""
    config = SearchConfig(
        space=SPACE,
        datasets=(dataset,),
        sample=args.sample,
        n_search=args.n,
        n_heldout=args.heldout_n,
        heldout_sample=args.heldout_sample,
        seed=0,  # the samples: the same for every run
        gp_seed=seed,
        pop=args.pop,
        gens=args.gens,
        batch_size=args.batch_size,
        workers=args.workers,
        terminals=terminals,  # type: ignore[arg-type]
        objective=objective,  # type: ignore[arg-type]
    )
    began = time.perf_counter()
    result = Search(config, benchmark=bench).run()
    seconds = time.perf_counter() - began
    cost = CostFunction(load_pass_costs(SPACE, dataset))
    best = result.best
    out: dict[str, Any] = {
        "dataset": dataset,
        "terminals": terminals,
        "objective": objective,
        "seed": seed,
        "seconds": round(seconds, 2),
        "best": _priced(best, cost) if best is not None else None,
        "costs_source": cost.costs.source,
        "reference_seconds": cost.costs.reference,
        "classic": [_priced(r, cost) for r in result.classic],
    }
    if objective == "tau+cost":
        front = [_priced(r, cost) for r in result.pareto_front]
        out["front"] = front
        heldout = [r["heldout_kendall"] for r in front if r["heldout_kendall"] is not None]
        out["front_best_heldout"] = max(heldout) if heldout else None
        out["goal"] = cheap_goal(front, out["classic"])
    return out


def cheap_goal(front: list[dict[str, Any]], classic: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue #18's goal on one run: the front member costing at most one forward+backward with
    the best *search* τ (chosen without the held-out sample), and whether its held-out τ beats
    every classic proxy that costs the same or less."""
    cheap = [r for r in front if r["cost_ratio"] <= 1.0 and r["search_kendall"] is not None]
    if not cheap:
        return {"expr": None, "met": False}
    pick = max(cheap, key=lambda r: r["search_kendall"])
    rivals = [
        c for c in classic
        if c["cost_ratio"] <= pick["cost_ratio"] + 1e-9 and c["heldout_kendall"] is not None
    ]  # fmt: skip
    rival = max(rivals, key=lambda c: c["heldout_kendall"], default=None)
    met = pick["heldout_kendall"] is not None and (
        rival is None or pick["heldout_kendall"] > rival["heldout_kendall"]
    )
    return {
        "expr": pick["expr"], "heldout_kendall": pick["heldout_kendall"],
        "cost_ratio": pick["cost_ratio"], "best_rival": rival and rival["expr"],
        "rival_heldout_kendall": rival and rival["heldout_kendall"],
        "rival_cost_ratio": rival and rival["cost_ratio"], "met": met,
    }  # fmt: skip


def goal_table(runs: list[dict[str, Any]]) -> str:
    """Markdown: per tau+cost run, the cheap pick (≤ 1 forward+backward) against the best
    classic proxy of the same or lower cost, on the held-out sample."""
    lines = [
        "| dataset | terminals | seed | pick (≤ 1 × fwd+bwd, best search τ) | × fwd+bwd "
        "| held-out τ | best classic at ≤ its cost | its held-out τ | beaten |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        goal = run.get("goal")
        if not goal:
            continue
        if goal["expr"] is None:
            lines.append(f"| {run['dataset']} | {run['terminals']} | {run['seed']} | none | "
                         "| | | | no |")  # fmt: skip
            continue
        rival = goal["best_rival"] or "–"
        rival_tau = goal["rival_heldout_kendall"]
        lines.append(
            f"| {run['dataset']} | {run['terminals']} | {run['seed']} | `{goal['expr']}` "
            f"| {goal['cost_ratio']:.2f} | {goal['heldout_kendall']:.3f} | {rival} "
            f"| {'–' if rival_tau is None else f'{rival_tau:.3f}'} "
            f"| {'yes' if goal['met'] else 'no'} |"
        )
    return "\n".join(lines)


def _priced(report: Any, cost: CostFunction) -> dict[str, Any]:
    seconds = cost(report.tree)
    return {
        "expr": report.expr,
        "size": report.size,
        "search_kendall": _finite(report.search_kendall),
        "heldout_kendall": _finite(report.heldout_kendall),
        "cost_seconds": seconds,
        "cost_ratio": cost.ratio(seconds),
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def table(runs: list[dict[str, Any]]) -> str:
    """Markdown: per dataset, terminal set and objective, the mean over seeds of the best
    expression's held-out τ and cost (and the front's best held-out τ for tau+cost)."""
    lines = [
        "| dataset | terminals | objective | seeds | held-out τ (best) | s/arch | × fwd+bwd "
        "| front size | front best held-out τ | best expression (first seed) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["dataset"], run["terminals"], run["objective"]), []).append(run)
    for (dataset, terminals, objective), group in groups.items():
        best = [r["best"] for r in group if r["best"]]

        def mean(values: list[float | None]) -> str:
            kept = [v for v in values if v is not None]
            if not kept:
                return "–"
            spread = f" ± {statistics.stdev(kept):.3f}" if len(kept) > 1 else ""
            return f"{statistics.fmean(kept):.3f}{spread}"

        front = [r for r in group if "front" in r]
        lines.append(
            f"| {dataset} | {terminals} | {objective} | {len(group)} "
            f"| {mean([b['heldout_kendall'] for b in best])} "
            f"| {mean([b['cost_seconds'] for b in best])} "
            f"| {mean([b['cost_ratio'] for b in best])} "
            f"| {mean([len(r['front']) for r in front]) if front else '–'} "
            f"| {mean([r['front_best_heldout'] for r in front]) if front else '–'} "
            f"| `{best[0]['expr'] if best else '–'}` |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Benchmark.load(SPACE)
    seeds = {"sample": 0, "gp": list(args.seeds), "probe": 0}
    provenance = record(__file__, SPACE, args.datasets, seeds, argv, bench, "excluded")
    print(describe(provenance), flush=True)
    runs = []
    for dataset in args.datasets:
        for terminals in args.terminal_sets:
            for objective in args.objectives:
                for seed in args.seeds:
                    run = run_one(args, bench, dataset, terminals, objective, seed)
                    runs.append(run)
                    best = run["best"] or {}
                    print(
                        f"{dataset} {terminals:<7} {objective:<8} seed {seed}: held-out τ "
                        f"{best.get('heldout_kendall')}, {best.get('cost_seconds', 0):.4f} s/arch "
                        f"({run['seconds']:.1f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    print(table(runs))
    if any("goal" in run for run in runs):
        print()
        print(goal_table(runs))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        document = {"provenance": provenance, "settings": _settings(args), "runs": runs}
        args.out.write_text(json.dumps(document, indent=1))
        print(f"\nwrote {args.out}")
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


if __name__ == "__main__":
    raise SystemExit(main())
