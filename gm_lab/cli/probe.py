"""`gm-lab probe` (fill the probe cache for a sample) and `gm-lab score PROXY` (judge a proxy).

Two seeds, on purpose: `--seed` draws the sample, `--probe-seed` initialises the networks and
picks the minibatch (it is part of the cache key). Scoring another sample therefore reuses every
architecture already probed instead of probing all of them again under a new key.

Scoring goes through a `Scorer` (ProbeArrays -> one score per architecture) chosen by
`resolve_scorer`, so GP expressions can later be scored by the same path as classic proxies.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gm_lab.benchmark import DATASETS, SPACES, Benchmark, normalise_dataset
from gm_lab.cli.checks import scheduler_address, writable_folder
from gm_lab.errors import GmLabError
from gm_lab.paths import origin_of
from gm_lab.provenance import run_provenance, standin_label
from gm_lab.sampling import (
    FINAL_TEST_SIZE,
    MIN_SAMPLE,
    SAMPLE_KINDS,
    Sample,
    development_pool,
    draw_sample,
    final_test_sample,
)

if TYPE_CHECKING:  # gm_lab.probe imports torch: keep `gm-lab --help` and `data` fast
    from gm_lab.probe.cache import ProbeArrays, ProbeCache
    from gm_lab.probe.record import ProbeConfig

Scorer = Callable[["ProbeArrays"], np.ndarray]


class UnknownProxyError(GmLabError):
    """The name given to `gm-lab score` is no proxy the probe computes."""


def register(commands: argparse._SubParsersAction) -> None:
    probe = commands.add_parser(
        "probe",
        help="probe a sample of architectures at initialisation and cache the statistics",
        description=(
            "Probe each architecture of a sample once (statistics per layer and classic "
            "proxies) into $GM_LAB_CACHE/probe/. Finished architectures are kept when the run "
            "is interrupted; a second run probes only the rest."
        ),
    )
    _sample_arguments(probe, kind="stratified", n=1000)
    _probe_arguments(probe)
    probe.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (run and usage)"
    )
    probe.set_defaults(run=run_probe)

    score = commands.add_parser(
        "score",
        help="rank correlation of a proxy (classic or expression) with test accuracy",
        description=(
            "Score a sample with a classic proxy or a proxy expression (probing what is not "
            "cached yet) and print Kendall tau and Spearman rho with the benchmark's test "
            "accuracy."
        ),
    )
    score.add_argument(
        "proxy",
        type=str.strip,
        help="proxy name (grad_norm, snip, synflow, naswot, ...) or expression, e.g. "
        "'mean(log(snip_l)) + 0.5 * naswot' (as gm-lab evolve prints them)",
    )
    _sample_arguments(score, kind="random", n=200)
    _probe_arguments(score)
    score.add_argument(
        "--final-test",
        action="store_true",
        help=f"score the fixed final test set ({FINAL_TEST_SIZE:,} architectures that no sample "
        "takes; --sample, --n, --bins and --seed do not apply) and every classic proxy on it: "
        "the headline figures, to report once",
    )
    score.add_argument(
        "--all",
        action="store_true",
        help="score the whole space: every architecture with ground truth, the final test set "
        "included (--sample, --n, --bins and --seed do not apply); resumable, at the cost of "
        "the expression's passes",
    )
    score.add_argument(
        "--full-probe",
        action="store_true",
        help="probe every statistic and proxy of the architectures not cached (as `gm-lab "
        "probe`) instead of only the passes the expression needs",
    )
    score.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    score.set_defaults(run=run_score)


def _sample_arguments(parser: argparse.ArgumentParser, kind: str, n: int) -> None:
    parser.add_argument("--space", choices=sorted(SPACES), default="tss", help="search space")
    parser.add_argument(
        "--dataset", type=normalise_dataset, default="cifar10", help=f"one of {list(DATASETS)}"
    )
    parser.add_argument(
        "--sample",
        choices=SAMPLE_KINDS,
        default=kind,
        help="even across accuracy bins (stratified), uniform (random) or half of each (mixed)",
    )
    parser.add_argument(
        "--n",
        type=_sample_size,
        default=n,
        help="sample size, or 'all' for every architecture with ground truth (stratified: "
        "n // bins per bin; mixed: half that, then random up to n)",
    )
    parser.add_argument(
        "--bins", type=_positive, default=10, help="accuracy bins of a stratified sample"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")


def _probe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size", type=_positive, default=64, help="minibatch size of the probe"
    )
    parser.add_argument(
        "--input", choices=("real", "gaussian"), default="real", help="minibatch images"
    )
    parser.add_argument(
        "--probe-seed", type=int, default=0, help="seed of network init and minibatch choice"
    )
    parser.add_argument(
        "--workers",
        type=_non_negative,
        default=2,
        help="worker processes (0 or 1: in this process)",
    )
    parser.add_argument(
        "--scheduler",
        type=scheduler_address,
        metavar="ADDRESS|local",
        help="probe on Dask: a scheduler address, or 'local' for a LocalCluster of --workers",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _sample_size(text: str) -> int | str:
    """A sample size of at least 3, or "all" (resolved once the benchmark is loaded)."""
    if text == "all":
        return text
    value = int(text)
    if value < MIN_SAMPLE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_SAMPLE} (or 'all'), got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# ---- shared steps --------------------------------------------------------------------------------
def _draw(bench: Benchmark, args: argparse.Namespace) -> Sample:
    """The sample, among architectures with ground truth for the dataset outside the final test
    set; or, with --final-test, the final test set."""
    accuracy = bench.accuracy(args.dataset)
    if getattr(args, "final_test", False):
        return final_test_sample(accuracy)
    if getattr(args, "all", False):
        known = np.flatnonzero(np.isfinite(np.asarray(accuracy, dtype=float)))
        return Sample(indices=known, kind="whole space", seed=0, note="")
    n = len(development_pool(accuracy)) if args.n == "all" else args.n
    sample = draw_sample(accuracy, args.sample, n, seed=args.seed, k=args.bins)
    if sample.note:
        print(f"gm-lab {args.command}: {args.sample} sample {sample.note}", file=sys.stderr)
    return sample


def _config(args: argparse.Namespace) -> ProbeConfig:
    from gm_lab.probe.record import ProbeConfig

    return ProbeConfig(
        space=args.space,
        dataset=args.dataset,
        batch_size=args.batch_size,
        input_kind=args.input,
        seed=args.probe_seed,
    )


def _fill_cache(
    bench: Benchmark, indices: np.ndarray, args: argparse.Namespace, proxies: list[str] = ()
) -> tuple[ProbeCache, dict[str, Any]]:
    """Probe what the cache lacks; return it and a summary of the run (counts, time, inputs)."""
    from gm_lab.probe.cache import ProbeCache
    from gm_lab.probe.runner import probe_many

    config = _config(args)
    cache = ProbeCache(config)
    reused = len(indices) - len(cache.missing(indices))
    start = time.perf_counter()
    probe_many(
        bench,
        indices,
        config,
        args.workers,
        args.scheduler,
        progress=True,
        cache=cache,
        proxies=proxies,
    )
    meta = cache.meta() or {}
    return cache, {
        "probed": len(indices) - reused,
        "reused": reused,
        "seconds": round(time.perf_counter() - start, 2),
        "cache": str(cache.folder),
        "inputs": meta.get("provenance"),  # the minibatch's provenance (stand-in images?)
    }


def _fill_terminals(
    bench: Benchmark, indices: np.ndarray, args: argparse.Namespace, terminals: list[str]
) -> tuple[ProbeCache, dict[str, Any]]:
    """Lazy probing: compute only `terminals` where the cache lacks them; a run summary as
    `_fill_cache`'s."""
    from gm_lab.probe.cache import ProbeCache
    from gm_lab.probe.runner import probe_terminals

    config = _config(args)
    cache = ProbeCache(config)
    gaps = cache.missing_terminals(terminals, indices)
    lacking = set().union(*gaps.values()) if gaps else set()
    start = time.perf_counter()
    probe_terminals(
        bench, indices, config, terminals, args.workers, args.scheduler, True, cache=cache
    )
    meta = cache.meta() or {}
    return cache, {
        "probed": len(lacking),
        "reused": len(indices) - len(lacking),
        "seconds": round(time.perf_counter() - start, 2),
        "cache": str(cache.folder),
        "inputs": meta.get("provenance"),
    }


def expression_arrays(
    bench: Benchmark,
    indices: np.ndarray,
    args: argparse.Namespace,
    proxy: str,
    full_probe: bool = False,
) -> tuple[ProbeArrays, dict[str, Any]]:
    """The probe arrays `proxy` (a name or expression) is computed from, for `indices` in
    their order, probing what the cache lacks (`args` carries the probe options), and the run's
    summary. Lazily (the default): only the terminals it reads, by the passes they need;
    `full_probe`: full records (every statistic and shared proxy) plus its standalone proxies.
    """
    if full_probe:
        standalone = standalone_used(proxy)
        cache, run = _fill_cache(bench, indices, args, standalone)
        return cache.load_arrays(indices, standalone), run
    terminals = score_terminals(proxy)
    cache, run = _fill_terminals(bench, indices, args, terminals)
    archs = [bench.arch(int(i)) for i in indices]
    return cache.load_terminals(indices, terminals, archs), run


def score_terminals(proxy: str) -> list[str]:
    """The statistics and proxies a proxy name or expression reads (what lazy probing
    computes)."""
    from gm_lab.expressions import parse
    from gm_lab.expressions.cost import expression_terminals

    return expression_terminals(parse(proxy))


def score_cost(proxy: str, space: str, dataset: str) -> dict[str, Any]:
    """What computing `proxy` costs per architecture (gm_lab.expressions.cost): seconds, as a
    multiple of one plain forward+backward, the passes, and where the figures come from;
    {"unavailable": why} when this space has no pass costs (`gm-lab costs --measure`)."""
    from gm_lab.expressions import parse
    from gm_lab.expressions.cost import expression_passes, load_pass_costs

    try:
        costs = load_pass_costs(space, dataset)
    except ValueError as exc:
        return {"unavailable": str(exc)}
    passes = expression_passes(parse(proxy))
    seconds = costs.of(passes)
    return {
        "seconds_per_arch": seconds,
        "forward_backward_multiple": seconds / costs.reference,
        "reference_seconds": costs.reference,
        "passes": sorted(passes),
        "unmeasured": costs.unmeasured(passes),
        "source": costs.source,
    }


def _cost_phrase(cost: dict[str, Any]) -> str:
    if "unavailable" in cost:
        return cost["unavailable"]
    shown = sorted({p.split(":")[0] for p in cost["passes"] if not p.startswith("proxy_")})
    own = [p.removeprefix("proxy_") for p in cost["passes"] if p.startswith("proxy_")]
    what = ", ".join(shown + [f"{n}'s own" for n in own]) or "nothing"
    return (
        f"{cost['seconds_per_arch']:.3f} s/arch = {cost['forward_backward_multiple']:.2f} x "
        f"one forward+backward (passes: {what}; {cost['source']})"
    )


def _inputs_phrase(provenance: dict[str, Any] | None) -> str:
    label = standin_label(provenance)
    if label is None or provenance is None:
        return ""
    return f"\n  inputs: {label} ({provenance['source']}): {provenance['note']}"


# ---- gm-lab probe --------------------------------------------------------------------------------
def _check_cache() -> None:
    """The probe cache must be writable before anything is probed."""
    from gm_lab.paths import CACHE_ENV, cache_root

    writable_folder(cache_root(), f"the cache folder (${CACHE_ENV})")


def run_probe(args: argparse.Namespace) -> int:
    from gm_lab.energy import EnergyMeter

    meter = EnergyMeter().start()  # what filling the cache used, workers included (#18 §6)
    _check_cache()
    bench = Benchmark.load(args.space)
    sample = _draw(bench, args)
    _, run = _fill_cache(bench, sample.indices, args)
    usage = meter.stop()
    if args.json:
        document = {
            "space": args.space, "dataset": args.dataset, "sample": args.sample,
            "n": len(sample), "config": _config(args).describe(), **run,
            "usage": usage.to_dict(),
        }  # fmt: skip
        print(json.dumps(_json_safe(document)))
        return 0
    print(
        f"probed {run['probed']}, reused {run['reused']} of {len(sample)} architectures "
        f"({args.space}/{args.dataset}, {args.sample} sample, batch {args.batch_size}) "
        f"in {run['seconds']:.1f} s; cache: {run['cache']}{_inputs_phrase(run['inputs'])}"
    )
    print(usage.line())
    return 0


# ---- gm-lab score --------------------------------------------------------------------------------
def known_proxies() -> list[str]:
    """Names of every registered proxy (what `score` accepts besides expressions)."""
    from gm_lab.plugins import PROXIES

    return sorted(PROXIES)


def standalone_used(proxy: str) -> list[str]:
    """The standalone proxies a proxy name or expression reads (computed apart, on demand)."""
    from gm_lab.expressions import ExpressionError, parse
    from gm_lab.plugins import PROXIES

    try:
        names = {node.name for node in parse(proxy) if node.arity == 0}
    except ExpressionError:
        return []
    return [n for n in PROXIES if n in names and PROXIES[n].standalone]


def resolve_scorer(name: str) -> Scorer:
    """The scoring function for `name`: a classic proxy's name, or any proxy expression (as
    `gm-lab evolve` prints them). A malformed expression raises the parser's ExpressionError
    (reason, column, caret); a bare unknown word, most likely a mistyped proxy, raises
    UnknownProxyError listing the valid names."""
    valid = known_proxies()
    if name in valid:
        return lambda arrays: arrays.proxies[name]
    from gm_lab.expressions import ExpressionError, evaluate, parse

    try:
        tree = parse(name)
    except ExpressionError as exc:
        if not name.strip().isidentifier():
            raise
        raise UnknownProxyError(
            f"unknown proxy {name!r}; valid proxies: {', '.join(valid)} (or an expression: "
            f"{exc.reason})"
        ) from None
    return lambda arrays: evaluate(tree, arrays)


def degenerate_reason(proxy: str, arrays: ProbeArrays, scores: np.ndarray) -> str | None:
    """Why these scores cannot (fully) rank the sample, naming where NaN comes from; or None."""
    from gm_lab.expressions import explain_degenerate, parse
    from gm_lab.metrics import degenerate_reason as reason_of

    if proxy in known_proxies():
        reason = reason_of(scores)
        bad = int((~np.isfinite(scores)).sum())
        return f"{reason} (the proxy {proxy!r} itself)" if reason and bad else reason
    return explain_degenerate(parse(proxy), arrays, scores)


def run_score(args: argparse.Namespace) -> int:
    from gm_lab.metrics import kendall, spearman  # scipy: imported only when scoring

    scorer = resolve_scorer(args.proxy)
    args.all = getattr(args, "all", False)
    args.full_probe = getattr(args, "full_probe", False)
    if args.all and args.final_test:
        raise GmLabError("--all already includes the final test set; give one of the two")
    _check_cache()
    bench = Benchmark.load(args.space, progress=not args.json)
    sample = _draw(bench, args)
    # --final-test compares every classic proxy: it needs full records
    full = args.final_test or args.full_probe
    arrays, run = expression_arrays(bench, sample.indices, args, args.proxy, full_probe=full)
    scores = np.asarray(scorer(arrays), dtype=float)
    truth = bench.accuracy(args.dataset)[sample.indices]
    result = {
        "proxy": args.proxy,
        "space": args.space,
        "dataset": args.dataset,
        "n": len(sample),
        "sample": sample.describe(),
        "kendall": kendall(scores, truth),
        "spearman": spearman(scores, truth),
        "indices": [int(i) for i in sample.indices],
        "scores": [float(s) for s in scores],
        "test_accuracy": [float(t) for t in truth],
        "probe": _config(args).describe(),
        "cost": score_cost(args.proxy, args.space, args.dataset),
        **run,
    }
    result["degenerate"] = degenerate_reason(args.proxy, arrays, scores)
    label = standin_label(run["inputs"])
    result["standin_images"] = {args.dataset: label} if label else {}
    if args.final_test:
        result["classic"] = {
            name: {"kendall": kendall(values, truth), "spearman": spearman(values, truth)}
            for name, values in sorted(arrays.proxies.items())
        }
    result["provenance"] = run_provenance(
        getattr(args, "argv", None),
        args.space,
        [args.dataset],
        {"sample": None if args.final_test or args.all else args.seed, "probe": args.probe_seed},
        bench,
        final_test="scored" if args.final_test else "included" if args.all else "excluded",
    )
    if args.json:
        print(json.dumps(_json_safe(result)))
        return 0
    if args.final_test:
        what = f"the final test set of {len(sample)} (fixed; never in a sample)"
    elif args.all:
        what = f"the whole space ({len(sample):,} architectures with ground truth)"
    else:
        what = f"{args.sample} sample of {len(sample)} (seed {args.seed})"
    print(f"{args.proxy} on {args.space}/{args.dataset}, {what}, batch {args.batch_size}")
    print(f"  ground truth  {origin_of(Path(bench.source))} ({bench.source})")
    print(f"  Kendall tau   {result['kendall']:+.4f}")
    print(f"  Spearman rho  {result['spearman']:+.4f}")
    print(f"  cost          {_cost_phrase(result['cost'])}")
    if result["degenerate"]:
        print(f"  note          {result['degenerate']}")
    if label:
        print(f"  {label} (no {args.dataset} images of its own; `gm-lab data info`)")
    if args.final_test:
        _print_classic(result["classic"])
    print(
        f"  probed {run['probed']}, reused {run['reused']}; cache: {run['cache']}"
        f"{_inputs_phrase(run['inputs'])}",
        file=sys.stderr,
    )
    return 0


def _print_classic(classic: dict[str, dict[str, float]]) -> None:
    """Every classic proxy on the final test set, best Kendall tau first."""
    print("  classic proxies on the same architectures:")
    order = sorted(classic, key=lambda n: -np.nan_to_num(classic[n]["kendall"], nan=-np.inf))
    for name in order:
        tau, rho = classic[name]["kendall"], classic[name]["spearman"]
        print(f"    {name:<14} tau {tau:+.4f}  rho {rho:+.4f}")


def _json_safe(value: Any) -> Any:
    """NaN/inf become null: strict JSON has no such numbers (a failed proxy gives them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
