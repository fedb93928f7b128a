"""Proxy explorer: time from an edit arriving from the tree editor to τ/ρ and the scatter's rows
being updated (Python side), on 1,000 real probed architectures.

Uses the random held-out sample R of benchmarks/quality.py (TSS CIFAR-10, 1,000 architectures,
probe cache filled by `python benchmarks/quality.py probe`):

    GM_LAB_DATA=../shared/data python benchmarks/explorer_latency.py --repeats 30

Each edit is sent as the front end sends it (a `proposal` trait holding the JSON tree), so the
time covers validation, rescoring, correlations, scatter rows, trait updates and the JSON
of the rows the browser receives (without a kernel's comm: its transfer is not included).
R is quality.py's with `--use-final-test`, the one its recorded figures probed (a timing: which
1,000 architectures does not matter). The first line printed is the run's provenance
(benchmarks/_provenance.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _provenance import header
from quality import build_parser, make_plan, random_split

from gm_lab.benchmark import Benchmark
from gm_lab.evolution.fitness import Split
from gm_lab.expressions import parse, to_json
from gm_lab.widgets import ProxyExplorer

EDITS = [
    "mean(log(snip_l))",
    "mean(log(grad_norm_l)) + 0.5 * log(naswot)",
    "sum(sqrt(a_active_l * fan_in_l)) / l2(g_std_l)",
    "std(standardise(log(fisher_l))) - median(tanh(w_abs_mean_l))",
    "log(synflow) + log(naswot) * mean(sigmoid(da_norm_l))",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    plan_args = build_parser().parse_args(["probe", "--use-final-test"])  # as probed for R
    bench = Benchmark.load("tss")
    plan = make_plan(bench, plan_args)
    config = plan.configs["cifar10"]
    seeds = {"sample": config.seed, "random_sample": 0, "probe": config.probe_seed}
    print(header(__file__, "tss", ["cifar10"], seeds, bench=bench, final_test="included"))
    arrays, truth, _ = random_split(bench, plan, "cifar10")
    explorer = ProxyExplorer([Split("cifar10", "heldout", arrays, truth)])
    trees = [to_json(parse(text)) for text in EDITS]
    seconds = []
    for i in range(args.repeats):
        began = time.perf_counter()
        explorer.editor.proposal = {"tree": trees[i % len(trees)], "seq": i + 1}
        json.dumps(explorer.scatter.chart.rows)  # what the comm would send to the browser
        seconds.append(time.perf_counter() - began)
        assert not explorer.editor.error and len(explorer.scatter.chart.rows) == len(arrays)
    print(f"{len(arrays)} architectures, {args.repeats} edits over {len(EDITS)} expressions:")
    median, worst = statistics.median(seconds) * 1e3, max(seconds) * 1e3
    print(
        f"edit -> τ/ρ + scatter rows + their JSON: median {median:.0f} ms, max {worst:.0f} ms "
        f"(rescoring alone: {explorer.last_seconds * 1e3:.0f} ms)"
    )


if __name__ == "__main__":
    main()
