"""`Search`: a proxy search you can start, pause, step, resume, stop and resume after a restart.

Two ways to run one:
- `run()` blocks (CLI, scripts): prepare, then every generation in the calling thread;
- `start()` returns at once and runs in a background thread, so a notebook stays usable; the
  thread first prepares (probing in worker processes, it only waits for them), then evolves.
  `pause()` takes effect after the current generation, `step()` runs exactly one generation of
  a paused search, `resume()` continues, `stop()` ends after the current generation (a later
  `start()` continues), `wait()` joins and returns the result.

After every generation a `GenerationEvent` goes to the `events` queue and to every subscribed
callback (called in the search thread; an exception in one is turned into a warning), and the
checkpoint is rewritten when `checkpoint_dir` is set. `Search.resume_from(dir)` rebuilds the
search from its checkpoint in a new process and continues it exactly: the same generations, hall
of fame and logbook as a run that was never interrupted (all randomness comes from the run's own
generator, see `gm_lab.evolution.rng`, saved in the checkpoint).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from gm_lab.benchmark import Benchmark
from gm_lab.errors import GmLabError
from gm_lab.evolution.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_path,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
    truth_fingerprint,
)
from gm_lab.evolution.config import SearchConfig
from gm_lab.evolution.data import SearchData, load_data
from gm_lab.evolution.engine import Engine, EngineState
from gm_lab.evolution.events import GenerationEvent, GenerationStats
from gm_lab.evolution.fitness import FitnessFunction, aggregate
from gm_lab.evolution.operators import Individual
from gm_lab.evolution.pareto import CostFunction, front_entry
from gm_lab.evolution.result import SearchResult, report_classic, report_tree
from gm_lab.expressions import parse, simplify
from gm_lab.expressions.cost import PassCosts, load_pass_costs

EVENT_QUEUE_LIMIT = 10_000  # events kept for a consumer that never reads the queue (oldest go)
Phase = Literal["new", "preparing", "running", "paused", "stopped", "finished", "failed"]
_SETTLED = ("paused", "stopped", "finished", "failed")  # the thread waits or has ended
Callback = Callable[[GenerationEvent], None]


class SearchStateError(GmLabError, RuntimeError):
    """A control call that does not fit the search's current phase (e.g. step() while running)."""


class Search:
    """One GP proxy search over `config`; see the module docstring for the life cycle.

    `phase` is one of new, preparing, running, paused, stopped, finished, failed;
    `generation` the last finished generation (-1 before the initial population, `gens` at
    the end); `history` every event so far (restored events included after a resume).
    """

    def __init__(
        self,
        config: SearchConfig,
        *,
        progress: bool = False,
        benchmark: Benchmark | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.events: queue.Queue[GenerationEvent] = queue.Queue()
        self.history: list[GenerationEvent] = []
        self._benchmark = benchmark
        self._callbacks: list[Callback] = []
        self._cond = threading.Condition()
        self._prepare_lock = threading.Lock()
        self._phase: Phase = "new"
        self._pause_requested = False
        self._stop_requested = False
        self._steps = 0  # generations granted to a paused search by step()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._data: SearchData | None = None
        self._engine: Engine | None = None
        self._restored: Checkpoint | None = None
        self._best_cache: dict[str, dict[str, dict[str, float]]] = {}
        self._snapshot: tuple[list[Individual], list[dict[str, Any]]] = ([], [])
        self._front: list[Individual] = []  # snapshot of the Pareto front (tau+cost)
        self._cost: CostFunction | None = None
        self._references: list[dict[str, Any]] | None = None

    @classmethod
    def resume_from(
        cls,
        checkpoint_dir: Path | str,
        *,
        gens: int | None = None,
        workers: int | None = None,
        progress: bool = False,
        benchmark: Benchmark | None = None,
    ) -> Search:
        """The search saved in `checkpoint_dir`, ready to continue from its last generation
        (and to keep checkpointing there). `gens` raises (or lowers) the generation budget;
        `workers` changes only how missing probes would be computed."""
        checkpoint = load_checkpoint(checkpoint_dir)
        if gens is not None and gens < checkpoint.generation:
            raise CheckpointError(
                f"gens={gens} is below the {checkpoint.generation} generations this checkpoint "
                f"has already done; ask for at least {checkpoint.generation}"
            )
        changes: dict[str, Any] = {"checkpoint_dir": str(checkpoint_path(checkpoint_dir).parent)}
        if gens is not None:
            changes["gens"] = gens
        if workers is not None:
            changes["workers"] = workers
        config = SearchConfig.from_dict(checkpoint.config).with_changes(**changes)
        search = cls(config, progress=progress, benchmark=benchmark)
        search._restored = checkpoint
        search.history = list(checkpoint.history)
        return search

    def __repr__(self) -> str:
        return (
            f"Search(phase={self.phase}, generation={self.generation}/{self.config.gens}, "
            f"datasets={list(self.config.datasets)})"
        )

    # ---- state ----------------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def generation(self) -> int:
        if self._engine is not None:
            return self._engine.state.generation
        return self._restored.generation if self._restored is not None else -1

    @property
    def error(self) -> BaseException | None:
        """What ended a failed search."""
        return self._error

    @property
    def data(self) -> SearchData | None:
        """Samples and splits, once prepared."""
        return self._data

    @property
    def cost(self) -> CostFunction | None:
        """What prices an expression (tau+cost only), once prepared."""
        return self._cost

    @property
    def state(self) -> EngineState | None:
        """The engine state (population, hall of fame, logbook); read it while paused."""
        return self._engine.state if self._engine is not None else None

    # ---- events ---------------------------------------------------------------------------------
    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call `callback(event)` after every generation (in the search thread); returns a
        function that unsubscribes it."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def _emit(self, event: GenerationEvent) -> None:
        if self.events.qsize() >= EVENT_QUEUE_LIMIT:
            with contextlib.suppress(queue.Empty):
                self.events.get_nowait()
        self.events.put(event)
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception as exc:
                warnings.warn(
                    f"search event callback {callback!r} raised {type(exc).__name__}: {exc}; "
                    "the search goes on",
                    RuntimeWarning,
                    stacklevel=2,
                )

    # ---- preparation ----------------------------------------------------------------------------
    def prepare(self) -> SearchData:
        """Draw the samples, probe what the caches lack (worker processes) and build the engine;
        idempotent. Blocks: `start()` calls it in the search thread instead."""
        with self._prepare_lock:
            if self._data is not None:
                return self._data
            config = self.config
            if (
                config.checkpoint_dir
                and self._restored is None
                and has_checkpoint(config.checkpoint_dir)
            ):
                raise CheckpointError(
                    f"{config.checkpoint_dir} already holds a search checkpoint; continue it "
                    "with Search.resume_from(dir) (gm-lab evolve --resume DIR) or choose "
                    "another folder"
                )
            data = load_data(config, self._benchmark, progress=self.progress)
            if self._restored is not None:
                if _sample_indices(data) != self._restored.samples:
                    raise CheckpointError(
                        "the samples drawn now differ from the checkpoint's (has the benchmark "
                        "table changed?); this checkpoint cannot be resumed on them"
                    )
                now = _truth_fingerprints(data)
                changed = [
                    k for k, v in self._restored.truth_fingerprint.items() if now.get(k) != v
                ]
                if changed:
                    raise CheckpointError(
                        f"the test accuracies of the sampled architectures changed since the "
                        f"checkpoint ({', '.join(changed)}): the benchmark table is not the one "
                        f"the search ran on, so its fitness values would not hold"
                    )
                state = self._restored.state
            else:
                state = EngineState.new(config)
            fitness = FitnessFunction(
                data.search_splits,
                config.metric,
                config.aggregate,
                config.size_penalty,
                cache=state.fitness_cache,
            )
            if config.objective == "tau+cost":
                self._cost = CostFunction(self._pass_costs())
            self._engine = Engine(config, fitness, state, cost=self._cost)
            self._snapshot = self._take_snapshot()
            self._data = data
            return data

    # ---- blocking run ---------------------------------------------------------------------------
    def run(self) -> SearchResult:
        """Prepare and run every remaining generation in the calling thread; the result.

        stop() (e.g. from a callback) ends it after the current generation; Ctrl-C leaves the
        last checkpoint, from which `resume_from` continues.
        """
        with self._cond:
            if self._alive():
                raise SearchStateError("the search runs in the background: use wait()")
            self._stop_requested = False
            self._pause_requested = False
            self._error = None
            self._phase = "preparing"
        try:
            self.prepare()
            while True:
                with self._cond:
                    if self._stop_requested:
                        self._set_phase("stopped")
                        break
                    if self.generation >= self.config.gens:
                        self._set_phase("finished")
                        break
                    self._phase = "running"
                self._advance()
        except KeyboardInterrupt:
            with self._cond:
                self._set_phase("stopped")
            raise
        except BaseException as exc:
            with self._cond:
                self._error = exc
                self._set_phase("failed")
            raise
        return self.result()

    # ---- background control ---------------------------------------------------------------------
    def start(self, paused: bool = False) -> None:
        """Run the search in a background thread (prepare first if needed); returns at once.
        With `paused`, the thread prepares and then waits for step() or resume().

        Probing runs in `workers` processes; with workers 0 or 1 it would run torch in the
        search thread itself, so probe first (`prepare()`, `gm-lab probe`) in that case."""
        with self._cond:
            if self._alive():
                raise SearchStateError("the search is already running")
            if self._phase == "failed":
                raise SearchStateError(f"the search failed: {self._error!r}")
            self._stop_requested = False
            self._pause_requested = paused
            self._steps = 0
            self._error = None
            self._phase = "preparing" if self._data is None else "running"
            self._thread = threading.Thread(target=self._main, name="gm-lab-search", daemon=True)
            self._thread.start()

    def pause(self, wait: bool = True, timeout: float | None = None) -> None:
        """Pause after the current generation; with `wait`, return once it has paused."""
        with self._cond:
            self._pause_requested = True
            self._cond.notify_all()
            waits = wait and self._alive() and not self._in_search_thread()
            if waits and not self._cond.wait_for(lambda: self._phase in _SETTLED, timeout):
                raise TimeoutError(f"the search did not pause within {timeout} s")

    def resume(self) -> None:
        """Continue a paused search (or start a stopped / new one in the background)."""
        with self._cond:
            self._pause_requested = False
            self._steps = 0
            self._cond.notify_all()
            restart = not self._alive() and self._phase not in ("finished", "failed")
        if restart:
            self.start()

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        """End the background run after the current generation (start() continues later)."""
        with self._cond:
            self._stop_requested = True
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and not self._in_search_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"the search did not stop within {timeout} s")

    def step(self, timeout: float | None = None) -> GenerationEvent | None:
        """Run exactly one generation of a paused (or not yet started) search and return its
        event; None when there is nothing left to do (finished or stopped)."""
        if not self._alive():
            done = self._data is not None and self.generation >= self.config.gens
            if self._phase == "finished" or done:
                return None
            self.start(paused=True)
        with self._cond:
            if not self._pause_requested:
                raise SearchStateError("step() runs one generation of a paused search: pause()")
            if not self._cond.wait_for(lambda: self._phase in _SETTLED, timeout):
                raise TimeoutError(f"the search did not pause within {timeout} s")
            self._raise_if_failed()
            if self._phase != "paused":
                return None
            before = self.generation
            self._steps += 1
            self._cond.notify_all()
            done = self._cond.wait_for(
                lambda: self._phase in _SETTLED and (self.generation > before or self._steps == 0),
                timeout,
            )
            if not done:
                raise TimeoutError(f"generation {before + 1} did not finish within {timeout} s")
            self._raise_if_failed()
            return self.history[-1] if self.generation > before else None

    def wait(self, timeout: float | None = None) -> SearchResult:
        """Wait for the background run to end (finished or stopped) and return the result;
        re-raises what made it fail."""
        thread = self._thread
        if thread is None:
            raise SearchStateError("the search was not started: call start() or run()")
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the search is still running after {timeout} s")
        self._raise_if_failed()
        return self.result()

    # ---- results --------------------------------------------------------------------------------
    def result(self) -> SearchResult:
        """The hall of fame and the classic proxies scored on every split, as of the last
        finished generation (safe to call while the search runs)."""
        data = self._data
        if data is None:
            raise SearchStateError("nothing to report before the search is prepared")
        hall_of_fame, logbook = self._snapshot
        how = self.config.aggregate
        reports = [report_tree(i, i.fitness.values[0], data.splits, how) for i in hall_of_fame]
        names = set.intersection(*(set(s.arrays.proxies) for s in data.splits))
        classic = [report_classic(name, data.splits, how) for name in sorted(names)]
        front, costs = [], None
        cost = self._cost
        if cost is not None:
            front = [
                report_tree(i, i.fitness.values[0], data.splits, how).priced(
                    i.fitness.values[1], cost.ratio(i.fitness.values[1])
                )
                for i in self._front
            ]
            classic = [r.priced(cost(r.tree), cost.ratio(cost(r.tree))) for r in classic]
            costs = _costs_data(cost.costs)
        return SearchResult(
            config=self.config,
            generation=int(logbook[-1]["gen"]) if logbook else -1,
            hall_of_fame=reports,
            classic=classic,
            samples=data.samples_described(),
            logbook=logbook,
            seconds={
                "prepare": round(data.seconds, 3),
                "evolve": round(self.history[-1].elapsed, 3) if self.history else 0.0,
            },
            probe=data.probe,
            pareto_front=front,
            costs=costs,
        )

    def reference_points(self) -> list[dict[str, Any]]:
        """The classic proxies as reference points of the Pareto front (tau+cost; [] else):
        "expr" (the proxy's name), "fitness" (its correlation on the search sample, aggregated
        as the fitness is), "cost" (seconds per architecture of the bare proxy) and
        "cost_ratio"; computed once, after preparing."""
        if self._references is not None:
            return self._references
        data, cost = self._data, self._cost
        if data is None or cost is None:
            return []
        names = set.intersection(*(set(s.arrays.proxies) for s in data.search_splits))
        points = []
        for name in sorted(names):
            report = report_classic(name, data.search_splits, self.config.aggregate)
            metric = f"search_{self.config.metric}"
            seconds = cost(parse(name))
            points.append(
                {
                    "expr": name,
                    "fitness": getattr(report, metric),
                    "cost": seconds,
                    "cost_ratio": cost.ratio(seconds),
                }
            )
        self._references = points
        return points

    # ---- internals ------------------------------------------------------------------------------
    def _main(self) -> None:
        """The background thread: prepare, then generations as the controls allow."""
        try:
            self.prepare()
            while self._await_turn():
                self._advance()
        except BaseException as exc:
            with self._cond:
                self._error = exc
                self._set_phase("failed")

    def _await_turn(self) -> bool:
        """Block while paused; True when the next generation may run, False to end the thread."""
        with self._cond:
            while True:
                if self._stop_requested:
                    self._set_phase("stopped")
                    return False
                if self.generation >= self.config.gens:
                    self._set_phase("finished")
                    return False
                if not self._pause_requested:
                    self._phase = "running"
                    return True
                if self._steps > 0:
                    self._steps -= 1
                    self._phase = "running"
                    return True
                if self._phase != "paused":
                    self._set_phase("paused")
                self._cond.wait()

    def _advance(self) -> GenerationEvent:
        """One generation: evolve, score the best, checkpoint, report."""
        engine, data, config = self._engine, self._data, self.config
        assert engine is not None and data is not None
        began = time.perf_counter()
        record = engine.advance()
        best = engine.best
        assert best is not None and best.key is not None
        evolved = time.perf_counter()
        per_split = self._best_correlations(best)
        canonical_size = len(simplify(best))
        reported = time.perf_counter()

        def summary(
            role: str, metric: str, found: dict[str, dict[str, float]] | None = None
        ) -> float | None:
            found = per_split if found is None else found
            values = [v[metric] for k, v in found.items() if k.endswith(f"/{role}")]
            return aggregate(values, config.aggregate) if values else None

        front = []
        if self._cost is not None:
            for member in engine.state.pareto_front:
                correlations = self._best_correlations(member)
                heldout = summary("heldout", "kendall", correlations)
                front.append(front_entry(member, self._cost, heldout_kendall=heldout))

        event = GenerationEvent(
            generation=engine.state.generation,
            gens=config.gens,
            stats=GenerationStats.from_record(record),
            best_expr=best.key,
            best_size=canonical_size,
            best_fitness=best.fitness.values[0],
            search_kendall=summary("search", "kendall"),  # type: ignore[arg-type]
            search_spearman=summary("search", "spearman"),  # type: ignore[arg-type]
            heldout_kendall=summary("heldout", "kendall"),
            heldout_spearman=summary("heldout", "spearman"),
            per_dataset=per_split,
            seconds=reported - began,
            timings={"evolve": evolved - began, "report": reported - evolved, "checkpoint": 0.0},
            elapsed=(self.history[-1].elapsed if self.history else 0.0) + reported - began,
            front=front,
        )
        if config.checkpoint_dir:  # holds this event too, with the time before saving
            self._save_checkpoint(config.checkpoint_dir, event)
            saved = time.perf_counter()
            event = replace(
                event,
                seconds=saved - began,
                timings={**event.timings, "checkpoint": saved - reported},
                elapsed=event.elapsed + saved - reported,
            )
        self._snapshot = self._take_snapshot()
        with self._cond:
            self.history.append(event)
        self._emit(event)
        with self._cond:
            self._cond.notify_all()
        return event

    def _best_correlations(self, best: Individual) -> dict[str, dict[str, float]]:
        """τ and ρ of the best expression (or a front member) on each searched dataset's search
        and held-out split (cached by canonical form: the best often stays the same for
        generations, and so does most of the front)."""
        assert self._data is not None and best.key is not None
        found = self._best_cache.get(best.key)
        if found is None:
            canonical = simplify(best)
            found = {
                f"{s.dataset}/{s.role}": s.correlations(canonical)
                for s in self._data.select(searched=True)
            }
            self._best_cache[best.key] = found
        return found

    def _take_snapshot(self) -> tuple[list[Individual], list[dict[str, Any]]]:
        """Copies of the hall of fame and logbook that result() may read from any thread."""
        assert self._engine is not None
        state = self._engine.state
        clone = self._engine.toolbox.clone
        self._front = [clone(i) for i in state.pareto_front]
        return [clone(i) for i in state.hall_of_fame], [dict(r) for r in state.logbook]

    def _save_checkpoint(self, folder: str, event: GenerationEvent) -> None:
        assert self._engine is not None and self._data is not None
        checkpoint = Checkpoint(
            config=self.config.to_dict(),
            state=self._engine.state,
            samples=_sample_indices(self._data),
            history=[*self.history, event],
            truth_fingerprint=_truth_fingerprints(self._data),
            costs=_costs_data(self._cost.costs) if self._cost is not None else None,
        )
        save_checkpoint(folder, checkpoint)

    def _pass_costs(self) -> PassCosts:
        """The checkpoint's pass costs when resuming (the run prices as it did), else this
        machine's (or the shipped) costs of the first dataset."""
        stored = self._restored.costs if self._restored is not None else None
        if stored is not None:
            return PassCosts.from_json(stored, str(stored.get("source", "the checkpoint")))
        return load_pass_costs(self.config.space, self.config.datasets[0])

    def _set_phase(self, phase: Phase) -> None:
        """Change phase and wake every waiter (call with the condition held)."""
        self._phase = phase
        self._cond.notify_all()

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _in_search_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _raise_if_failed(self) -> None:
        if self._phase == "failed" and self._error is not None:
            raise self._error


def _costs_data(costs: PassCosts) -> dict[str, Any]:
    """Pass costs as plain data, with where they came from."""
    return {**costs.to_json(), "source": costs.source}


def _truth_fingerprints(data: SearchData) -> dict[str, str]:
    """One fingerprint of the ground truth per split ("cifar10/search"), for resuming."""
    return {f"{s.dataset}/{s.role}": truth_fingerprint(s.truth) for s in data.splits}


def _sample_indices(data: SearchData) -> dict[str, list[int]]:
    out = {"search": [int(i) for i in data.search_sample.indices]}
    if data.heldout_sample is not None:
        out["heldout"] = [int(i) for i in data.heldout_sample.indices]
    return out
