"""`gm-lab data ...`: inspect the benchmark and import an official NATS-Bench download."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from gm_lab.benchmark import DATASETS, SPACES, Benchmark, normalise_dataset


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("data", help="inspect or import NATS-Bench ground truth")
    sub = group.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    info = sub.add_parser(
        "info",
        help="summarise a benchmark: number of archs, accuracy range, best architecture",
        description="Load a search space's ground truth and summarise it for one dataset.",
    )
    info.add_argument("--space", choices=sorted(SPACES), default="tss", help="search space")
    info.add_argument(
        "--dataset", type=normalise_dataset, default="cifar10", help=f"one of {list(DATASETS)}"
    )
    info.add_argument("--json", action="store_true", help="print one JSON object instead")
    info.set_defaults(run=run_info)

    imp = sub.add_parser(
        "import",
        help="convert an official NATS-Bench folder into the compact table (once)",
        description=(
            "Read an official NATS-*-simple folder through the nats_bench API (final epoch, "
            "mean over seeds) and write the compact table that loads in under a second. "
            "By default it goes to $GM_LAB_CACHE/nats_bench/<space>.csv, where gm-lab looks."
        ),
    )
    imp.add_argument("path", type=Path, help="e.g. ~/.torch/NATS-tss-v1_0-3ffb9-simple")
    imp.add_argument(
        "--space", choices=sorted(SPACES), help="search space (default: from the folder name)"
    )
    imp.add_argument("--out", type=Path, help="where to write the table (default: the cache)")
    imp.set_defaults(run=run_import)


def run_info(args: argparse.Namespace) -> int:
    bench = Benchmark.load(args.space, progress=not args.json)
    summary = bench.summary(args.dataset)
    if args.json:
        print(json.dumps(summary))
        return 0
    best = summary["best"]
    print(f"NATS-Bench {summary['space'].upper()} / {summary['dataset']}")
    print(f"  source         {summary['source']}")
    print(f"  schedule       hp={summary['hp']} epochs, test accuracy averaged over seeds")
    print(
        f"  architectures  {summary['n_archs']:,} "
        f"({summary['n_with_ground_truth']:,} with ground truth)"
    )
    print(
        f"  test accuracy  {summary['test_acc_min']:.2f} .. {summary['test_acc_max']:.2f} % "
        f"(mean {summary['test_acc_mean']:.2f})"
    )
    print(f"  best           #{best['index']}  {best['test_acc']:.2f} %  {best['arch']}")
    return 0


def _space_from_folder(path: Path) -> str:
    match = re.search(r"NATS-(tss|sss)", path.resolve().name)
    if match is None:
        raise SystemExit(
            f"gm-lab: error: cannot tell the space from {path.name!r}; pass --space tss|sss"
        )
    return match.group(1)


def run_import(args: argparse.Namespace) -> int:
    space = args.space or _space_from_folder(args.path)
    bench = Benchmark.import_official(args.path, space, out=args.out)
    n_known = len(bench.with_ground_truth("cifar10"))
    print(
        f"imported {bench.n_archs:,} {space} architectures ({n_known:,} with results) "
        f"-> {bench.source if args.out is None else args.out}"
    )
    return 0
