"""Probe many architectures, skipping what the cache already holds.

Three backends produce the same records, and the parent process alone writes them to the cache
as they arrive (so Ctrl-C keeps every finished architecture, and a remote cluster never needs
write access to the local cache):
- in-process (`workers` 0 or 1);
- a pool of `workers` spawned processes, each loading the minibatch once;
- Dask (`scheduler="local"` starts a LocalCluster, any other value is a scheduler address).

Every backend probes with ONE torch thread. Torch's results depend on its thread count (float
sums are split differently), and the cache key does not include how a record was computed, so
the numbers must not depend on the backend either. On this 2-core machine 2 single-thread
workers are about as fast as one 2-thread process anyway (shared/notes/performance.md).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from gm_lab.errors import GmLabError
from gm_lab.inputs import Minibatch, StandInImagesWarning
from gm_lab.plugins import PROXIES, STATISTICS, Need, shipping
from gm_lab.probe.allocator import keep_freed_memory
from gm_lab.probe.cache import ProbeCache, input_identity
from gm_lab.probe.probe import (
    default_inputs,
    probe_architecture,
    resolve_proxies,
    score_standalone,
)
from gm_lab.probe.record import ProbeConfig, ProbeRecord

Job = tuple[int, str]  # (architecture index, architecture string)


class ProbeFn(Protocol):
    """The signature of `gm_lab.probe.probe.probe_architecture` (replaceable in tests)."""

    def __call__(
        self,
        index: int,
        arch: str,
        config: ProbeConfig,
        batch: Minibatch | None = None,
        noise: Minibatch | None = None,
    ) -> ProbeRecord: ...


FLUSH_SECONDS = 0.5  # finished results wait at most this long before they are stored


class ProbeFailedError(GmLabError):
    """Probing one architecture raised; everything finished before it is cached."""


class _Benchmark(Protocol):
    def arch(self, index: int) -> str: ...


# ---- the entry point --------------------------------------------------------------------------
def probe_many(
    bench: _Benchmark,
    indices: Iterable[int],
    config: ProbeConfig,
    workers: int = 2,
    scheduler: str | None = None,
    progress: bool = True,
    *,
    cache: ProbeCache | None = None,
    probe: ProbeFn | None = None,
    proxies: Iterable[str] = (),
) -> ProbeCache:
    """Probe those of `indices` that `cache` (default: the config's cache) lacks; return it.

    `proxies`: standalone proxies to compute too, for the architectures whose values for them
    are not cached (each runs its own passes; the shared passes are not repeated for them).

    Raises CacheError if the cache was filled from other inputs, ProbeFailedError if probing an
    architecture fails (after cancelling the rest; finished ones stay cached).
    """
    space = getattr(getattr(bench, "space", None), "name", config.space)
    if space != config.space:
        raise ValueError(f"benchmark of space {space!r} given for a {config.space!r} probe")
    cache = cache if cache is not None else ProbeCache(config)
    probe = probe if probe is not None else probe_architecture
    batch, noise = default_inputs(config)
    cache.bind_inputs(batch.provenance())
    expected = input_identity(batch.provenance())
    indices = list(indices)
    run = partial(_run_jobs, bench, config, cache, batch, noise, expected, progress)
    where = f"{config.space}/{config.dataset}"
    run(cache.missing(indices), probe, f"probe {where}", scheduler, workers)
    standalone = [n for n in resolve_proxies(proxies) if PROXIES[n].standalone]  # records: shared
    _fill_standalone(run, cache, standalone, indices, where, scheduler, workers)
    return cache


def probe_terminals(
    bench: _Benchmark,
    indices: Iterable[int],
    config: ProbeConfig,
    terminals: Iterable[str],
    workers: int = 2,
    scheduler: str | None = None,
    progress: bool = True,
    *,
    cache: ProbeCache | None = None,
) -> ProbeCache:
    """Lazy probing: compute only the `terminals` (statistics and proxies, e.g. those of one
    expression) that `cache` lacks for `indices`, running only the passes they need: a
    forward-only set never runs a backward, a data-free one no pass at all. Full records
    already cached are used as they are; what is computed goes to the cache's columns.

    Same errors as `probe_many`; returns the cache (`load_terminals` reads the values).
    """
    terminals = list(dict.fromkeys(terminals))
    unknown = [t for t in terminals if t not in PROXIES and t not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown terminals {unknown}")
    space = getattr(getattr(bench, "space", None), "name", config.space)
    if space != config.space:
        raise ValueError(f"benchmark of space {space!r} given for a {config.space!r} probe")
    cache = cache if cache is not None else ProbeCache(config)
    batch, noise = default_inputs(config)
    cache.bind_inputs(batch.provenance())
    expected = input_identity(batch.provenance())
    indices = list(indices)
    where = f"{config.space}/{config.dataset}"
    run = partial(_run_jobs, bench, config, cache, batch, noise, expected, progress)
    shared = [t for t in terminals if t in PROXIES and not PROXIES[t].standalone]
    stats = [t for t in terminals if t in STATISTICS]
    gaps = cache.missing_terminals(shared + stats, indices)
    if gaps:
        lacking = set().union(*gaps.values())
        todo = [i for i in dict.fromkeys(indices) if i in lacking]
        lean = partial(probe_architecture, proxies=shared, statistics=stats)
        desc = f"probe {where} ({', '.join(gaps)})"
        run(todo, lean, desc, scheduler, workers, cache.put_terminals)
    standalone = [t for t in terminals if t in PROXIES and PROXIES[t].standalone]
    _fill_standalone(run, cache, standalone, indices, where, scheduler, workers)
    return cache


def _fill_standalone(
    run: Callable[..., None],
    cache: ProbeCache,
    names: list[str],
    indices: list[int],
    where: str,
    scheduler: str | None,
    workers: int,
) -> None:
    """Compute the standalone proxies `names` where their columns lack a value."""
    gaps = cache.missing_standalone(names, indices)
    if not gaps:
        return
    names = tuple(gaps)
    todo = sorted(set().union(*gaps.values()))
    if all(PROXIES[n].needs is Need.ARCHITECTURE for n in names):
        scheduler, workers = None, 0  # architecture-only: faster here than shipped out
    score = partial(score_standalone, names=names)
    run(todo, score, f"{', '.join(names)} {where}", scheduler, workers)


def _run_jobs(
    bench: _Benchmark,
    config: ProbeConfig,
    cache: ProbeCache,
    batch: Minibatch,
    noise: Minibatch,
    expected: dict[str, Any],
    progress: bool,
    todo: Iterable[int],
    probe: ProbeFn,
    desc: str,
    scheduler: str | None,
    workers: int,
    store: Callable[[list[ProbeRecord]], None] | None = None,
) -> None:
    """Compute `probe` for the architectures `todo` on the chosen backend, caching results as
    they arrive (`store`, default `cache.put_all`), in batches of at most `FLUSH_SECONDS`:
    thousands of cheap (data-free) results a second are not synced to disk one by one, and an
    error or Ctrl-C still stores everything finished before it."""
    store = store if store is not None else cache.put_all
    jobs = [(int(i), bench.arch(int(i))) for i in todo]
    if not jobs:
        return
    workers = max(0, min(int(workers), len(jobs)))
    if scheduler is not None:
        results = _run_dask(jobs, config, probe, expected, scheduler, max(1, workers))
    elif workers >= 2:
        results = _run_pool(jobs, config, probe, expected, workers)
    else:
        results = _run_serial(jobs, config, probe, batch, noise)
    pending: list[ProbeRecord] = []
    flushed = time.monotonic()
    with tqdm(total=len(jobs), desc=desc, unit="arch", disable=not progress) as bar:
        try:
            for record in results:
                pending.append(record)
                bar.update(1)
                if time.monotonic() - flushed >= FLUSH_SECONDS:
                    store(pending)
                    pending, flushed = [], time.monotonic()
        finally:
            try:
                if pending:
                    store(pending)
            finally:
                results.close()  # stops workers / cluster on error or Ctrl-C


# ---- backends: each yields records as they finish ----------------------------------------------
def _run_serial(
    jobs: list[Job], config: ProbeConfig, probe: ProbeFn, batch: Minibatch, noise: Minibatch
) -> Generator[ProbeRecord, None, None]:
    with _one_torch_thread():
        for index, arch in jobs:
            yield _checked(index, arch, partial(probe, index, arch, config, batch, noise))


def _run_pool(
    jobs: list[Job], config: ProbeConfig, probe: ProbeFn, expected: dict[str, Any], workers: int
) -> Generator[ProbeRecord, None, None]:
    pool = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(config, os.getpid(), shipping.pack()),
    )
    finished = False
    try:
        task = partial(_probe_task, config=config, probe=probe, expected=expected)
        futures = {pool.submit(task, i, a): (i, a) for i, a in jobs}
        for future in cf.as_completed(futures):
            index, arch = futures[future]
            yield _checked(index, arch, future.result)
        finished = True
    finally:
        if not finished:  # error or Ctrl-C: stop now; workers only compute, nothing is lost
            _terminate_workers(pool)
        pool.shutdown(wait=finished, cancel_futures=True)


def _terminate_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes (public API from Python 3.14, private before)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _run_dask(
    jobs: list[Job],
    config: ProbeConfig,
    probe: ProbeFn,
    expected: dict[str, Any],
    scheduler: str,
    workers: int,
) -> Generator[ProbeRecord, None, None]:
    from dask.distributed import as_completed

    plugins = shipping.pack()
    with _dask_client(scheduler, workers) as client:
        futures = [
            client.submit(_probe_task, i, a, config, probe, expected, plugins, pure=False)
            for i, a in jobs
        ]
        owner = {f.key: job for f, job in zip(futures, jobs, strict=True)}
        try:
            for future in as_completed(futures):
                index, arch = owner[future.key]
                yield _checked(index, arch, future.result)
        finally:
            client.cancel(futures)


@contextmanager
def _dask_client(scheduler: str, workers: int) -> Iterator[Any]:
    """A Client on `scheduler` ("local": a LocalCluster of single-thread worker processes)."""
    import logging

    from dask.distributed import Client, LocalCluster

    if scheduler != "local":
        try:
            client = Client(scheduler)
        except (OSError, TimeoutError) as exc:
            raise ProbeFailedError(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from exc
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _checked(index: int, arch: str, compute: Callable[[], ProbeRecord]) -> ProbeRecord:
    """Run `compute`; wrap a failure in ProbeFailedError and refuse a record of another arch."""
    try:
        record = compute()
    except (cf.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise ProbeFailedError(
            f"probing architecture {index} ({arch}) failed: {type(exc).__name__}: {exc}"
        ) from exc
    if record.index != index or record.arch != arch:
        raise ProbeFailedError(f"asked for architecture {index}, got {record.index}")
    return record


# ---- worker side ------------------------------------------------------------------------------
_INPUTS: dict[str, tuple[Minibatch, Minibatch]] = {}  # per process: config key -> inputs


def _worker_inputs(config: ProbeConfig) -> tuple[Minibatch, Minibatch]:
    """Load the config's inputs once per process (the parent already warned about stand-ins)."""
    key = config.key()
    if key not in _INPUTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StandInImagesWarning)
            _INPUTS[key] = default_inputs(config)
    return _INPUTS[key]


def _init_worker(config: ProbeConfig, parent: int, plugins: bytes) -> None:
    """Pool worker set-up: the parent's own plug-ins registered (a notebook's proxy or space),
    one torch thread, Ctrl-C left to the parent, freed memory kept for the next probe
    (gm_lab.probe.allocator), inputs loaded."""
    shipping.unpack(plugins)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent)  # the pid from the parent: it may be gone before this runs
    torch.set_num_threads(1)
    keep_freed_memory()
    _worker_inputs(config)


def exit_with_parent(parent: int, every: float = 0.5) -> threading.Thread:
    """End this worker once `parent` is gone, whatever killed it: SIGKILL and an unhandled
    SIGTERM run no clean-up in the parent, and an orphaned worker would hold its ~1 GB (and
    the resource tracker) until the machine restarts. A daemon thread polls the parent pid."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)  # nothing to flush: a worker only computes; the parent writes the cache

    watcher = threading.Thread(target=watch, name="gm-lab-exit-with-parent", daemon=True)
    watcher.start()
    return watcher


def _probe_task(
    index: int,
    arch: str,
    config: ProbeConfig,
    probe: ProbeFn,
    expected: dict[str, Any],
    plugins: bytes | None = None,
) -> ProbeRecord:
    """One architecture in a worker (pool or Dask; Dask workers have no initializer, so they
    get the parent's own plug-ins with each task: `plugins`, from gm_lab.plugins.shipping).

    A worker whose data differs from the parent's (a remote Dask worker without the images,
    say) refuses to probe: its numbers would be stored under the parent's input provenance.
    """
    if plugins is not None:
        shipping.unpack(plugins)
    torch.set_num_threads(1)
    batch, noise = _worker_inputs(config)
    found = input_identity(batch.provenance())
    if found != expected:
        raise RuntimeError(f"this worker's minibatch is {found}, the caller's is {expected}")
    return probe(index, arch, config, batch, noise)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
