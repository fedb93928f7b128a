"""`gm-lab nas`: zero-cost NAS with hardware limits (issue #18; engine: gm_lab.nas.protocol).

In each of --runs runs, --n architectures are drawn at random, those meeting the HW-NAS-Bench
limits are kept, and each method picks the candidate it scores best; the picks' true test
accuracy is reported as mean ± std over runs, beside the baselines (random pick, parameter
count, the classic naswot and meco proxies, and the oracle) and the picks' latency and energy.

Each method's scores are computed once, on the union of all runs' candidates: 100 runs over the
same space probe each architecture once. `expression_scores` is the one way scores are made
here: data-free names (`params` from the table, proxies of the architecture alone such as
`sed_like`) without the probe, anything else through `gm-lab score`'s path (lazy probing,
`expression_arrays`, then `resolve_scorer`), so a change to that path reaches `gm-lab nas` as it is.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from gm_lab.benchmark import (
    DATASETS,
    HW_DEVICES,
    HW_UNITS,
    NUM_CLASSES,
    SPACES,
    Benchmark,
    normalise_dataset,
)
from gm_lab.cli.probe import (
    _check_cache,
    _config,
    _json_safe,
    _positive,
    _probe_arguments,
    expression_arrays,
    resolve_scorer,
)
from gm_lab.errors import GmLabError
from gm_lab.nas.protocol import ORACLE, RANDOM, NasResult, draw, run_protocol
from gm_lab.provenance import run_provenance, standin_label

BASELINES = (RANDOM, "params", "naswot", "meco", ORACLE)
PROBED_BASELINES = ("naswot", "meco")  # read from the probe cache: they probe every candidate
TABLE_PARAMS = "params"  # the benchmark's parameter count (network counting where it has none)


class NasError(GmLabError):
    """Arguments `gm-lab nas` cannot run with (the message says why)."""


def register(commands: argparse._SubParsersAction) -> None:
    nas = commands.add_parser(
        "nas",
        help="zero-cost NAS under a hardware latency limit: a proxy's picks against baselines",
        description=(
            "The standard zero-cost NAS protocol: in each of --runs runs draw --n random "
            "architectures, keep those whose HW-NAS-Bench latency on --device is at most "
            "--max-latency-ms, pick the best by the proxy and report its true test accuracy "
            "(mean ± std over runs), beside random choice, the parameter count, naswot, meco "
            "and the oracle (best candidate). Scores are computed once on the union of all "
            "runs' candidates (probing what the cache lacks)."
        ),
    )
    nas.add_argument(
        "--proxy",
        required=True,
        type=str.strip,
        metavar="EXPR",
        help="proxy name or expression (as gm-lab evolve prints it); higher picks, so write "
        "'-EXPR' for a lower-is-better one. Data-free names (params, sed_like) need no probe",
    )
    nas.add_argument("--space", choices=sorted(SPACES), default="tss", help="search space")
    nas.add_argument(
        "--dataset", type=normalise_dataset, default="cifar10", help=f"one of {list(DATASETS)}"
    )
    nas.add_argument("--n", type=_positive, default=1000, help="architectures drawn per run")
    nas.add_argument("--runs", type=_positive, default=100, help="independent runs")
    nas.add_argument("--seed", type=int, default=0, help="seed of the draws (run r: [seed, r])")
    nas.add_argument(
        "--device",
        choices=HW_DEVICES,
        default="edgegpu",
        help="HW-NAS-Bench device of the limits and of the picks' latency/energy",
    )
    nas.add_argument(
        "--max-latency-ms",
        type=_positive_float,
        metavar="MS",
        help="keep only candidates at most this slow on --device (default: no limit)",
    )
    nas.add_argument(
        "--max-energy-mj",
        type=_positive_float,
        metavar="MJ",
        help="keep only candidates using at most this energy on --device (edgegpu, eyeriss, fpga)",
    )
    nas.add_argument(
        "--baselines",
        type=_baselines,
        default=BASELINES,
        metavar="LIST",
        help=f"comma-separated, of {','.join(BASELINES)} (default: all). naswot and meco "
        "probe every candidate, slow on a CPU: --baselines random,params,oracle for a "
        "data-free run",
    )
    nas.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _probe_arguments(nas)
    nas.set_defaults(run=run_nas)


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _baselines(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown baseline(s) {', '.join(unknown)}; choose from {','.join(BASELINES)}"
        )
    return names


# ---- scores ----------------------------------------------------------------------------------
def data_free_scores(
    bench: Benchmark, indices: np.ndarray, expr: str, dataset: str
) -> np.ndarray | None:
    """Scores of `indices` without the probe when `expr` is a data-free name: `params` (the
    table's count; closed-form counting where it has none) or a registered proxy of the
    architecture alone (e.g. `sed_like`). None for anything else."""
    from gm_lab.plugins import PROXIES
    from gm_lab.plugins.specs import Need, ProxyContext

    dataset = normalise_dataset(dataset)
    if expr == TABLE_PARAMS:
        values = bench.params(dataset)[indices]
        for row in np.flatnonzero(~np.isfinite(values)):
            values[row] = bench.space.count_params(bench.arch(indices[row]), NUM_CLASSES[dataset])
        return values
    spec = PROXIES.get(expr)
    if spec is None or spec.needs != Need.ARCHITECTURE or not spec.applies_to(bench.space.name):
        return None
    num_classes = NUM_CLASSES[dataset]
    space = bench.space.name
    return spec.sign * np.array(
        [spec.compute(ProxyContext(bench.arch(i), space, dataset, num_classes)) for i in indices],
        dtype=float,
    )


def expression_scores(
    bench: Benchmark, indices: np.ndarray, expr: str, args: argparse.Namespace
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Scores of `expr` (proxy name or expression) on `indices`, in their order, and the probe
    run's summary (None when nothing went through the probe).

    Data-free names are computed directly; everything else as `gm-lab score` does it: probe
    lazily what the cache lacks (`args` carries the probe options), apply the scorer.
    A registered proxy whose sign is -1 is negated, so that higher is better.
    """
    indices = np.asarray(indices, dtype=np.int64)
    free = data_free_scores(bench, indices, expr, args.dataset)
    if free is not None:
        return free, None
    scorer = resolve_scorer(expr)
    _check_cache()
    arrays, run = expression_arrays(bench, indices, args, expr)
    scores = np.asarray(scorer(arrays), dtype=float)
    return _sign(expr) * scores, run


def _sign(expr: str) -> int:
    """-1 for a registered lower-is-better proxy named alone, else +1."""
    from gm_lab.plugins import PROXIES

    return int(PROXIES[expr].sign) if expr in PROXIES else 1


def _whole_space(n_archs: int, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(n_archs, np.nan)
    out[indices] = values
    return out


# ---- the command -----------------------------------------------------------------------------
def _limits(bench: Benchmark, args: argparse.Namespace) -> tuple[np.ndarray | None, list[str]]:
    """The mask of architectures meeting the limits (None: no limit) and their description."""
    allowed = None
    described = []
    for metric, limit in (("latency", args.max_latency_ms), ("energy", args.max_energy_mj)):
        if limit is None:
            continue
        values = bench.hardware(args.dataset, args.device, metric)
        meets = np.isfinite(values) & (values <= limit)
        allowed = meets if allowed is None else allowed & meets
        described.append(f"{args.device} {metric} <= {limit:g} {HW_UNITS[metric]}")
        if not (meets & np.isfinite(bench.accuracy(args.dataset))).any():
            least = np.nanmin(values) if np.isfinite(values).any() else float("nan")
            raise NasError(
                f"no architecture of {bench.space.name} meets {described[-1]} on "
                f"{args.dataset}: the least is {least:.4g} {HW_UNITS[metric]}"
            )
    if allowed is not None and not (allowed & np.isfinite(bench.accuracy(args.dataset))).any():
        raise NasError(f"no architecture of {bench.space.name} meets {' and '.join(described)}")
    return allowed, described


def _figures(bench: Benchmark, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Latency (and energy where HW-NAS-Bench measured it) of every architecture on --device,
    reported for each pick; none when the table has no HW-NAS-Bench columns (a limit would
    have said so already)."""
    return {
        f"{metric}_{HW_UNITS[metric]}": bench.hardware(args.dataset, args.device, metric)
        for metric in ("latency", "energy")
        if args.device in bench.hardware_devices(args.dataset, metric)
    }


def run_nas(args: argparse.Namespace) -> int:
    scorer_names = [args.proxy, *[b for b in args.baselines if b not in (RANDOM, ORACLE)]]
    for name in scorer_names:
        resolve_scorer(name)  # a malformed expression or unknown proxy: refused before any work
    bench = Benchmark.load(args.space, progress=not args.json)
    accuracy = bench.accuracy(args.dataset)
    pool = np.flatnonzero(np.isfinite(accuracy))
    if args.n > len(pool):
        raise NasError(
            f"--n {args.n:,} is larger than the space: {len(pool):,} architectures of "
            f"{bench.space.name} have {args.dataset} ground truth"
        )
    allowed, limits = _limits(bench, args)
    figures = _figures(bench, args)
    draws = draw(pool, args.n, args.runs, args.seed, allowed)
    needed = draws.needed()

    scores: dict[str, np.ndarray] = {}
    probe_runs: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(scorer_names):
        values, run = expression_scores(bench, needed, name, args)
        scores[name] = _whole_space(bench.n_archs, needed, values)
        if run is not None:
            probe_runs[name] = run
    result = run_protocol(
        scores, accuracy, args.n, args.runs, args.seed, allowed, figures, draws=draws
    )
    order = [args.proxy, *[b for b in args.baselines if b != args.proxy]]
    if ORACLE not in order:
        order.append(ORACLE)  # always computed: the reference every row is read against
    report = _report(args, bench, result, order, limits, allowed, needed, probe_runs)
    if args.json:
        print(json.dumps(_json_safe(report)))
    else:
        _print_table(report)
    return 0


def _report(
    args: argparse.Namespace,
    bench: Benchmark,
    result: NasResult,
    order: list[str],
    limits: list[str],
    allowed: np.ndarray | None,
    needed: np.ndarray,
    probe_runs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    summary = result.summary()
    first = next(iter(probe_runs.values()), None)
    inputs = first.get("inputs") if first else None
    label = standin_label(inputs)
    per_run = result.per_run()
    for entry in per_run:
        entry["picks"] = {name: entry["picks"][name] for name in order}
    return {
        "proxy": args.proxy,
        "space": bench.space.name,
        "dataset": args.dataset,
        "n": args.n,
        "runs": args.runs,
        "seed": args.seed,
        "device": args.device,
        "limits": limits,
        "max_latency_ms": args.max_latency_ms,
        "max_energy_mj": args.max_energy_mj,
        "scored": len(needed),  # the union of all runs' candidates, each scored once
        "meeting_limits": None if allowed is None else int(allowed.sum()),
        "candidates_per_run_mean": float(np.mean([len(c) for c in result.draws.candidates])),
        "pool_mean_accuracy": float(np.nanmean(result.pool_accuracy)),
        "methods": {name: summary[name] for name in order},
        "order": order,
        "per_run": per_run,
        "picked_archs": {
            str(i): bench.arch(i)
            for i in sorted({p["index"] for e in per_run for p in e["picks"].values()} - {None})
        },
        "probe": ({"config": _config(args).describe(), "runs": probe_runs} if probe_runs else None),
        "standin_images": {args.dataset: label} if label else {},
        "provenance": run_provenance(
            getattr(args, "argv", None),
            bench.space.name,
            [args.dataset],
            {"draw": args.seed, "probe": args.probe_seed if probe_runs else None},
            bench,
            probe=bool(probe_runs),
            final_test="included",  # the protocol draws from the whole space
        ),
    }


def _print_table(report: dict[str, Any]) -> None:
    limit = " and ".join(report["limits"]) or "no hardware limit"
    print(
        f"zero-cost NAS on {report['space']}/{report['dataset']}: {report['runs']} runs of "
        f"n = {report['n']:,} (seed {report['seed']}), {limit}; "
        f"{report['candidates_per_run_mean']:.1f} candidates per run, "
        f"{report['scored']:,} architectures scored"
    )
    device = report["device"]
    figures = [k for k in ("latency_ms", "energy_mJ") if f"{k}_mean" in report["methods"][ORACLE]]
    heads = "".join(f"  {device + ' ' + k.replace('_', ' (') + ')':>20}" for k in figures)
    width = max(12, *(len(n) for n in report["order"]))
    print(f"  {'method':<{width}}  {'test acc (%)':>16}{heads}  runs")
    for name in report["order"]:
        row = report["methods"][name]
        acc = _pm(row["mean"], row["std"], 2)
        cells = "".join(f"  {_pm(row[f'{k}_mean'], row[f'{k}_std'], 3):>20}" for k in figures)
        print(f"  {name:<{width}}  {acc:>16}{cells}  {row['runs_with_pick']}")
    print(f"  (mean test accuracy of the candidates: {report['pool_mean_accuracy']:.2f} %)")
    if report["standin_images"]:
        print(f"  {report['standin_images'][report['dataset']]}")
    probe = report["probe"]
    if probe:
        for name, run in probe["runs"].items():
            print(
                f"  {name}: probed {run['probed']}, reused {run['reused']}; cache: {run['cache']}",
                file=sys.stderr,
            )


def _pm(mean: float | None, std: float | None, digits: int) -> str:
    """ "93.12 ± 0.31" ("–" for a missing number)."""

    def fmt(v: float | None) -> str:
        return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"

    return f"{fmt(mean)} ± {fmt(std)}"
