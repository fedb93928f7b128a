"""Whole-space rank correlation (issue #18 §4): proxies scored on every TSS architecture, at the
cost of the passes they need.

Usage (from the repository root):

    GM_LAB_DATA=../shared/data python benchmarks/whole_space.py sed_like naswot \
        --dataset cifar10 --workers 2 --json benchmarks/whole_space.json

With `--together`, every proxy's terminals are first probed in one lazy probe per architecture
(the union of the passes they need: one forward serves them all), timed on its own; the rows'
wall times are then those of scoring from the cache, and each row's modelled cost says what it
would take alone.

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


def probe_together(exprs: list[str], dataset: str, workers: int) -> dict:
    """Lazy-probe the union of `exprs`' terminals on every architecture with ground truth, one
    probe per architecture (gm-lab score's probe settings): what it computed and its wall time."""
    from gm_lab.benchmark import Benchmark
    from gm_lab.cli.probe import score_terminals
    from gm_lab.probe.cache import ProbeCache
    from gm_lab.probe.record import ProbeConfig
    from gm_lab.probe.runner import probe_terminals

    bench = Benchmark.load("tss")
    indices = bench.with_ground_truth(dataset)
    terminals = list(dict.fromkeys(t for e in exprs for t in score_terminals(e)))
    cache = ProbeCache(ProbeConfig(space="tss", dataset=dataset))
    lacking = set().union(*cache.missing_terminals(terminals, indices).values())
    start = time.perf_counter()
    probe_terminals(bench, indices, cache.config, terminals, workers, cache=cache)
    return {
        "terminals": terminals, "architectures": len(indices), "probed": len(lacking),
        "wall_seconds": time.perf_counter() - start, "workers": workers,
    }  # fmt: skip


def scatter_figure(results: list[dict], path: Path) -> Path:
    """One rank-vs-accuracy scatter per proxy over the whole space, side by side (PNG/SVG/PDF by
    suffix, offline through vl-convert): what τ summarises, at a glance."""
    import altair as alt

    from gm_lab.widgets.charts import correlation_scatter, scatter_rows, scatter_title
    from gm_lab.widgets.vega import export, spec_and_rows

    rows = []
    for result in results:
        title = f"{result['proxy']}\n" + scatter_title(result["kendall"], result["spearman"])
        n = len(result["scores"])
        for row in scatter_rows(result["indices"], [""] * n, result["scores"],
                                result["test_accuracy"]):  # fmt: skip
            rows.append({"proxy": title, "x": row["x"], "accuracy": row["accuracy"]})
    order = list(dict.fromkeys(row["proxy"] for row in rows))  # as given, not alphabetical
    header = alt.Header(labelFontSize=12, labelLimit=0, labelExpr="split(datum.value, '\\n')")
    chart = (
        correlation_scatter(width=420, height=260)
        .mark_circle(size=4, opacity=0.25)
        .encode(color=alt.value("#3b528b"))
        .facet(facet=alt.Facet("proxy:N", sort=order, title=None, header=header), columns=2)
    )
    spec, _ = spec_and_rows(chart)
    return export(spec, rows, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("proxies", nargs="+", help="proxy names or expressions")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the record here")
    parser.add_argument(
        "--together", action="store_true", help="probe every proxy's terminals in one pass first"
    )
    parser.add_argument("--figure", type=Path, help="write the scatters here (.png, .svg, .pdf)")
    args = parser.parse_args()

    together = probe_together(args.proxies, args.dataset, args.workers) if args.together else None
    rows, results, figures = [], [], []
    for expr in args.proxies:
        result, seconds = score_all(expr, args.dataset, args.workers)
        arrays = {key: result.pop(key) for key in ("scores", "indices", "test_accuracy")}
        results.append(result)
        figures.append(
            {**arrays, "proxy": expr, **{k: result[k] for k in ("kendall", "spearman", "n")}}
        )
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
    if together:
        print(
            f"probed together first: {', '.join(together['terminals'])} on "
            f"{together['probed']:,} architectures lacking them, {together['wall_seconds']:.0f} s "
            f"wall ({together['workers']} workers); rows' wall times are then from the cache"
        )
    if args.figure:
        print(f"figure: {scatter_figure(figures, args.figure)}")
    if args.json:
        record = {
            "together": together,
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
