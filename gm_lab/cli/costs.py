"""`gm-lab costs`: what each probe pass costs on this machine, and what expressions cost."""

from __future__ import annotations

import argparse
import json
import sys

from gm_lab.benchmark import DATASETS, SPACES, normalise_dataset
from gm_lab.cli.probe import _positive


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "costs",
        help="seconds per architecture of each probe pass, and of proxy expressions",
        description=(
            "Show the measured cost of each probe pass per architecture (seconds of one CPU "
            "thread, and as a multiple of one plain forward+backward), and the cost of the "
            "expressions given: the sum over the distinct passes their terminals need. Until "
            "--measure has run on this machine the figures are the ones measured where gm_lab "
            "was built (labelled 'shipped estimate')."
        ),
    )
    parser.add_argument("expressions", nargs="*", help="proxy names or expressions to cost")
    parser.add_argument("--space", choices=sorted(SPACES), default="tss", help="search space")
    parser.add_argument(
        "--dataset", type=normalise_dataset, default="cifar10", help=f"one of {list(DATASETS)}"
    )
    parser.add_argument(
        "--measure",
        action="store_true",
        help="measure the passes here on --n random architectures (about 8 s each) and keep "
        "the figures for this machine",
    )
    parser.add_argument("--n", type=_positive, default=10, help="architectures to measure on")
    parser.add_argument("--seed", type=int, default=0, help="seed of those architectures")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(run=run_costs)


def run_costs(args: argparse.Namespace) -> int:
    from gm_lab.expressions import parse
    from gm_lab.expressions.cost import expression_passes, load_pass_costs

    trees = [(text, parse(text)) for text in args.expressions]  # bad input fails before work
    if args.measure:
        costs, path = _measure(args)
        print(f"measured on {args.n} architectures; saved to {path}", file=sys.stderr)
    else:
        costs = load_pass_costs(args.space, args.dataset)
    rows = [
        {
            "expression": text,
            "seconds_per_arch": costs.of(expression_passes(tree)),
            "forward_backward_multiple": costs.of(expression_passes(tree)) / costs.reference,
            "passes": sorted(expression_passes(tree)),
            "unmeasured": costs.unmeasured(expression_passes(tree)),
        }
        for text, tree in trees
    ]
    if args.json:
        print(
            json.dumps({"costs": {**costs.to_json(), "source": costs.source}, "expressions": rows})
        )
        return 0
    print(f"probe pass costs, {costs.space}/{costs.dataset} ({costs.source})")
    print(f"  one plain forward+backward: {costs.reference:.4f} s")
    for name, seconds in sorted(costs.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<24} {seconds:8.4f} s  {seconds / costs.reference:6.2f} x")
    for row in rows:
        print(
            f"{row['expression']}: {row['seconds_per_arch']:.3f} s/arch = "
            f"{row['forward_backward_multiple']:.2f} x forward+backward"
        )
        if row["unmeasured"]:
            print(f"  (not measured, counted as one forward+backward: {row['unmeasured']})")
    return 0


def _measure(args: argparse.Namespace) -> tuple:
    import numpy as np

    from gm_lab.benchmark import Benchmark
    from gm_lab.probe.costs import measure_pass_costs, save_pass_costs
    from gm_lab.probe.record import ProbeConfig

    bench = Benchmark.load(args.space)
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(bench.n_archs, size=min(args.n, bench.n_archs), replace=False)
    config = ProbeConfig(space=args.space, dataset=args.dataset)
    costs = measure_pass_costs([bench.arch(int(i)) for i in picks], config, progress=not args.json)
    return costs, save_pass_costs(costs)
