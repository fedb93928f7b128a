"""`gm-lab evolve`: evolve a zero-cost proxy with GP and compare it with every classic proxy.

Options left out take `SearchConfig`'s defaults (the single source of them), so the CLI, the
Python API and the notebook run the same search for the same settings. The search sample is
drawn exactly as `gm-lab score` draws it, so `gm-lab score "<best expr>"` with the same
--space/--dataset/--sample/--n/--bins/--seed/--batch-size reproduces the search Kendall τ.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gm_lab.benchmark import DATASETS, SPACES, normalise_dataset
from gm_lab.cli.checks import (
    UnusableOptionError,
    finite_non_negative,
    scheduler_address,
    writable_file,
    writable_folder,
)
from gm_lab.cli.probe import _cost_phrase, _non_negative, _positive, score_cost
from gm_lab.energy import EnergyMeter
from gm_lab.sampling import SAMPLE_KINDS

if TYPE_CHECKING:  # gm_lab.evolution imports torch (via the probe): keep `gm-lab --help` fast
    from gm_lab.evolution import GenerationEvent, Search, SearchConfig, SearchResult

# Defaults as SearchConfig has them (repeated here only for the help text; a test checks them).
DEFAULTS: dict[str, Any] = {
    "space": "tss",
    "datasets": ("cifar10",),
    "sample": "stratified",
    "n_search": 200,
    "n_heldout": 200,
    "bins": 10,
    "seed": 0,
    "pop": 100,
    "gens": 30,
    "metric": "kendall",
    "aggregate": "mean",
    "size_penalty": 0.0,
    "objective": "tau",
    "terminals": "all",
    "max_height": 10,
    "max_size": 60,
    "batch_size": 64,
    "input_kind": "real",
    "probe_seed": 0,
    "workers": 2,
}
# argparse destination -> SearchConfig field, for the settings a checkpoint fixes
_SETTINGS = {
    "space": "space",
    "dataset": "datasets",
    "sample": "sample",
    "n": "n_search",
    "heldout_n": "n_heldout",
    "heldout_sample": "heldout_sample",
    "bins": "bins",
    "seed": "seed",
    "gp_seed": "gp_seed",
    "pop": "pop",
    "metric": "metric",
    "aggregate": "aggregate",
    "size_penalty": "size_penalty",
    "max_height": "max_height",
    "max_size": "max_size",
    "batch_size": "batch_size",
    "input": "input_kind",
    "probe_seed": "probe_seed",
    "scheduler": "scheduler",
    "standalone": "standalone",
    "objective": "objective",
    "terminals": "terminals",
}
OBJECTIVES = ("tau", "tau+cost")  # as gm_lab.evolution.config (not imported: it loads torch)
TERMINAL_SETS = ("all", "stats", "proxies")


def register(commands: argparse._SubParsersAction) -> None:
    d = DEFAULTS
    evolve = commands.add_parser(
        "evolve",
        help="evolve a zero-cost proxy expression with genetic programming",
        description=(
            "Probe a search sample and a disjoint held-out sample (cached, worker processes), "
            "then evolve proxy expressions whose fitness is the rank correlation with test "
            "accuracy on the search sample. Prints one line per generation and a table of the "
            "evolved proxies vs every classic proxy on both samples. The defaults (stratified "
            "200 + 200: about 270 architectures, as some accuracy bins hold fewer, probed at "
            "batch 64 by 2 workers) spend a few minutes probing the first time; later runs "
            "reuse the probe cache and take seconds."
        ),
    )
    evolve.add_argument("--space", choices=sorted(SPACES), help=f"search space ({d['space']})")
    evolve.add_argument(
        "--dataset",
        type=_datasets,
        help=f"dataset, or several separated by commas (fitness aggregates over them); "
        f"one of {list(DATASETS)} ({d['datasets'][0]})",
    )
    evolve.add_argument("--sample", choices=SAMPLE_KINDS, help=f"search sample ({d['sample']})")
    evolve.add_argument(
        "--n", type=_positive, help=f"search sample size (stratified: n // bins per bin; "
        f"mixed: n // 2 // bins per bin, then random up to n) ({d['n_search']})"
    )  # fmt: skip
    evolve.add_argument(
        "--heldout-n",
        type=_non_negative,
        help=f"held-out sample size, disjoint from the search sample; 0: none ({d['n_heldout']})",
    )
    evolve.add_argument(
        "--heldout-sample",
        choices=SAMPLE_KINDS,
        help="held-out sample kind (default: as --sample)",
    )
    evolve.add_argument("--bins", type=_positive, help=f"accuracy bins ({d['bins']})")
    evolve.add_argument("--seed", type=int, help=f"seed of the samples and the GP ({d['seed']})")
    evolve.add_argument(
        "--gp-seed", type=int, help="seed of the GP alone: another run on the same samples"
    )
    evolve.add_argument("--pop", type=_positive, help=f"population size ({d['pop']})")
    evolve.add_argument(
        "--gens", type=_non_negative, help=f"generations after the initial one ({d['gens']})"
    )
    evolve.add_argument(
        "--metric", choices=("kendall", "spearman"), help=f"fitness ({d['metric']})"
    )
    evolve.add_argument(
        "--aggregate",
        choices=("mean", "min"),
        help=f"fitness over several datasets ({d['aggregate']})",
    )
    evolve.add_argument(
        "--size-penalty",
        type=finite_non_negative,
        help=f"fitness = correlation - this x nodes ({d['size_penalty']})",
    )
    evolve.add_argument(
        "--objective",
        choices=OBJECTIVES,
        help="tau: maximise the rank correlation; tau+cost: NSGA-II on the correlation and the "
        "seconds per architecture computing the expression takes (the probe passes its "
        "terminals need, `gm-lab costs`), giving a Pareto front of accurate and cheap "
        f"expressions ({d['objective']})",
    )
    evolve.add_argument(
        "--terminals",
        choices=TERMINAL_SETS,
        help="what expressions are built from: all, stats (the per-layer statistics only) or "
        f"proxies (the classic proxies only) ({d['terminals']})",
    )
    evolve.add_argument(
        "--standalone",
        type=_names,
        metavar="NAME,...",
        help="standalone proxies to add as terminals, comma separated ('' for none; default: "
        "the data-free ones; `gm-lab proxies` lists them); each runs its own passes per "
        "architecture",
    )
    evolve.add_argument("--max-height", type=_positive, help=f"tree height ({d['max_height']})")
    evolve.add_argument("--max-size", type=_positive, help=f"tree nodes ({d['max_size']})")
    evolve.add_argument(
        "--batch-size", type=_positive, help=f"probe minibatch size ({d['batch_size']})"
    )
    evolve.add_argument("--input", choices=("real", "gaussian"), help="probe minibatch images")
    evolve.add_argument("--probe-seed", type=int, help="seed of network init and minibatch")
    evolve.add_argument(
        "--workers",
        type=_non_negative,
        help=f"probe worker processes; 0 or 1: in this process ({d['workers']})",
    )
    evolve.add_argument(
        "--scheduler",
        type=scheduler_address,
        metavar="ADDRESS|local",
        help="probe on Dask (see gm-lab probe)",
    )
    evolve.add_argument(
        "--checkpoint",
        metavar="DIR",
        type=Path,
        help="write a checkpoint after every generation (and result.json at the end) here",
    )
    evolve.add_argument(
        "--resume",
        metavar="DIR",
        type=Path,
        help="continue the search checkpointed in DIR (its settings; --gens may extend it)",
    )
    evolve.add_argument("--save", metavar="PATH", type=Path, help="write the result JSON here")
    evolve.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout (generation lines go to stderr)",
    )
    evolve.set_defaults(run=run_evolve)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _datasets(text: str) -> tuple[str, ...]:
    try:
        return tuple(normalise_dataset(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def make_search(args: argparse.Namespace) -> Search:
    """The Search the arguments describe: a new one, or the checkpointed one for --resume."""
    from gm_lab.evolution import Search, SearchConfig

    progress = not args.json
    if args.resume is not None:
        ignored = [f"--{k.replace('_', '-')}" for k in _SETTINGS if getattr(args, k) is not None]
        if args.checkpoint is not None:
            ignored.append("--checkpoint")
        if ignored:
            print(
                f"gm-lab evolve: --resume takes the settings from the checkpoint; ignoring "
                f"{', '.join(ignored)}",
                file=sys.stderr,
            )
        return Search.resume_from(
            args.resume, gens=args.gens, workers=args.workers, progress=progress
        )
    settings = {
        field: getattr(args, dest)
        for dest, field in _SETTINGS.items()
        if getattr(args, dest) is not None
    }
    for name in ("gens", "workers"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if args.checkpoint is not None:
        settings["checkpoint_dir"] = str(args.checkpoint)
    return Search(SearchConfig(**settings), progress=progress)


def describe(config: SearchConfig) -> str:
    heldout = f", held-out {config.heldout_kind} {config.n_heldout}" if config.n_heldout else ""
    return (
        f"evolving on {config.space}/{'+'.join(config.datasets)}: {config.sample} sample "
        f"{config.n_search}{heldout} (seed {config.seed}), batch {config.batch_size}; "
        + (f"GP seed {config.gp_seed}, " if config.gp_seed is not None else "")
        + f"pop {config.pop}, {config.gens} generations, fitness {config.metric}"
        + (f" ({config.aggregate} over datasets)" if len(config.datasets) > 1 else "")
        + (f" - {config.size_penalty:g} x size" if config.size_penalty else "")
        + (f", objective {config.objective}" if config.objective != "tau" else "")
        + (f", terminals {config.terminals}" if config.terminals != "all" else "")
    )


def ground_truth_line(space: str) -> str:
    """Which source the ground truth comes from (a user's download or the embedded default)."""
    from gm_lab.benchmark.benchmark import locate
    from gm_lab.benchmark.spaces import space_info

    info = space_info(space)
    found = locate(info)
    return f"ground truth: {info.display_name} from the {found.origin} ({found.path})"


def score_command(result: SearchResult) -> str:
    """The `gm-lab score` call that reproduces the best expression's search Kendall τ."""
    config = result.config
    expr = result.best.expr if result.best else "EXPR"
    return " ".join(
        [
            "gm-lab score",
            shlex.quote(expr),
            f"--space {config.space} --dataset {config.datasets[0]}",
            f"--sample {config.sample} --n {config.n_search} --bins {config.bins}",
            f"--seed {config.seed} --batch-size {config.batch_size}",
            f"--input {config.input_kind} --probe-seed {config.probe_seed}",
        ]
    )


def check_paths(args: argparse.Namespace) -> None:
    """Every path the run will write, checked before any probing (UnusableOptionError)."""
    from gm_lab.paths import CACHE_ENV, cache_root

    writable_folder(cache_root(), f"the cache folder (${CACHE_ENV})")
    if args.checkpoint is not None:
        writable_folder(args.checkpoint, "--checkpoint")
    if args.resume is not None:
        if not Path(args.resume).is_dir():
            raise UnusableOptionError(f"--resume {args.resume} is not a checkpoint folder")
        writable_folder(args.resume, "--resume")
    if args.save is not None:
        writable_file(args.save, "--save")


def run_evolve(args: argparse.Namespace) -> int:
    meter = EnergyMeter().start()  # this run only: a resumed search's earlier runs are not in it
    check_paths(args)
    search = make_search(args)
    log = sys.stderr if args.json else sys.stdout
    print(describe(search.config), file=log, flush=True)
    print(ground_truth_line(search.config.space), file=log, flush=True)
    if search.generation >= 0:
        print(f"resuming after generation {search.generation}", file=log, flush=True)

    def show(event: GenerationEvent) -> None:
        print(event.line(), file=log, flush=True)

    search.subscribe(show)
    try:
        result = search.run()
    except KeyboardInterrupt:
        if search.config.checkpoint_dir and search.generation >= 0:
            print(
                f"gm-lab evolve: stopped after generation {search.generation}; continue with "
                f"gm-lab evolve --resume {search.config.checkpoint_dir}",
                file=sys.stderr,
            )
        raise
    result.provenance = provenance(search.config, getattr(args, "argv", None))
    usage = meter.stop()
    result.usage = usage.to_dict()
    result.best_cost = best_cost(result)
    report(result, args)
    print(usage.line(), file=log, flush=True)
    return save_result(result, search.config.checkpoint_dir, args.save)


def best_cost(result: SearchResult) -> dict[str, Any] | None:
    """What the best expression will cost per architecture wherever it is used (`gm-lab score`'s
    cost: seconds, x one forward+backward, the costs' source); {"unavailable": why} when this
    space has no pass costs; None without a best expression."""
    if result.best is None:
        return None
    config = result.config
    return score_cost(result.best.expr, config.space, config.datasets[0])


def provenance(config: SearchConfig, argv: list[str] | None) -> dict[str, Any]:
    """The result's provenance block (gm_lab.provenance.run_provenance)."""
    from gm_lab.provenance import run_provenance

    seeds = {"sample": config.seed, "gp": config.run_seed, "probe": config.probe_seed}
    final_test = "included" if config.use_final_test else "excluded"
    return run_provenance(argv, config.space, config.datasets, seeds, final_test=final_test)


def save_result(result: SearchResult, checkpoint_dir: str | None, save: Path | None) -> int:
    """Write the result files after it was printed: a write failure loses nothing (exit 1)."""
    targets = [Path(checkpoint_dir) / "result.json"] if checkpoint_dir else []
    targets += [save] if save is not None else []
    failed = 0
    for target in targets:
        try:
            result.save(target)
        except OSError as exc:
            failed = 1
            print(
                f"gm-lab evolve: could not write the result to {target} "
                f"({exc.strerror or exc}); it is printed above",
                file=sys.stderr,
            )
    return failed


def report(result: SearchResult, args: argparse.Namespace) -> None:
    """The result on stdout: one JSON object, or the best expression and the table."""
    if args.json:
        print(json.dumps(result.to_dict()), flush=True)
        return
    best = result.best
    if best is not None:
        print(f"\nbest expression ({best.size} nodes, fitness {best.fitness:+.4f}):\n  {best.expr}")
        print(f"rescore it (same search sample, cached probes):\n  {score_command(result)}")
        cost = result.best_cost or {"unavailable": "not computed"}
        print("its cost per architecture at use time:\n  " + _cost_phrase(cost))
    for role, sample in result.samples.items():
        if sample.get("note"):
            print(f"\n{role} sample ({sample['kind']}): {sample['note']}")
    for dataset, label in result.standin_images.items():
        print(f"\n{dataset}: {label} (no {dataset} images of its own; `gm-lab data info`)")
    print(f"\n{result.table()}")
    front = result.front_table()
    if front:
        print(f"\n{front}")
    seconds = result.seconds
    print(
        f"\nprepare {seconds.get('prepare', 0.0):.1f} s (probing: "
        + ", ".join(f"{d} {p['probed']} new, {p['reused']} cached" for d, p in result.probe.items())
        + f"), evolution {seconds.get('evolve', 0.0):.1f} s",
        flush=True,
    )
