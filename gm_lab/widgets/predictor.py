"""`PredictorView`: train an accuracy predictor (gm_lab.predict) in a background thread and see
how well it predicts held-out architectures, which features it leans on, and how its held-out
Kendall τ grows with the number of labelled architectures (the learning curve).

A thin view: splitting, training, scoring, importances and the curve are the engine's
(`split`, `train_and_evaluate`, `Predictor.importances`, `learning_curve`, `curve_table`); this
module only runs them off the kernel's main thread, shows their results, and can stop a curve
between two runs. The worker thread only records results under a lock and pokes a `Throttle`;
the widgets are refreshed from that record a few times per second (see throttle.py).
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Sequence
from typing import Any, Literal

import ipywidgets as w

from gm_lab.benchmark import Benchmark
from gm_lab.predict import MODELS, ArchFeatureSource, CurvePoint, PredictorError
from gm_lab.predict.protocol import (
    CURVE_SIZES,
    FeatureFn,
    Run,
    curve_sizes,
    curve_table,
    learning_curve,
    split,
    train_and_evaluate,
)
from gm_lab.widgets.charts import (
    curve_rows,
    importance_chart,
    importance_rows,
    learning_curve_chart,
    prediction_rows,
    prediction_scatter,
    scatter_title,
)
from gm_lab.widgets.throttle import Throttle
from gm_lab.widgets.vega import VegaChart

State = Literal["idle", "running", "done", "stopped", "error"]
TOP_FEATURES = 15
CURVE_SEEDS = 3  # the widget's default: a curve in seconds (the CLI's --curve uses 5)


class PredictorView(w.VBox):
    """Train a predictor on `train_n` random labelled architectures, judge it on `heldout_n`
    others, and optionally run the learning curve; every setting is editable in the view.

    `features`: a `FeatureFn` (indices -> `Features`) for `feature_set`; by default the
    data-free architecture features (`ArchFeatureSource`), which need no probe and no data.
    """

    def __init__(
        self,
        space: str = "tss",
        dataset: str = "cifar10",
        *,
        train_n: int = 200,
        heldout_n: int = 1000,
        model: str = "rf",
        seed: int = 0,
        curve: bool = False,
        curve_seeds: int = CURVE_SEEDS,
        sizes: Sequence[int] = CURVE_SIZES,
        benchmark: Benchmark | None = None,
        features: FeatureFn | None = None,
        feature_set: str = "arch",
        interval: float = 0.25,
    ) -> None:
        self.bench = benchmark if benchmark is not None else Benchmark.load(space, progress=False)
        self.space, self.dataset = space, dataset
        self.accuracy = self.bench.accuracy(dataset)
        if features is None:
            if feature_set != "arch":
                raise PredictorError(
                    f"feature set {feature_set!r} needs probe records: pass features= (a "
                    "FeatureFn over the probe cache), or use the data-free 'arch' features"
                )
            features = ArchFeatureSource(space, dataset, self.bench.arch)
        self.features = features
        self.feature_set = feature_set
        self.sizes = tuple(sizes)

        # results, written by the worker thread under the lock
        self._lock = threading.Lock()
        self.state: State = "idle"
        self.error: str | None = None
        self.step = ""
        self.done_steps, self.total_steps = 0, 1
        self.result: Run | None = None
        self.importances: dict[str, float] = {}
        self.curve_points: list[CurvePoint] = []
        self.curve: list[dict[str, Any]] = []  # curve_table of the points so far
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self.throttle: Throttle[None] = Throttle(lambda _: self._show(), interval)

        self.controls: dict[str, w.ValueWidget] = {
            "train_n": w.IntText(train_n, description="train-n", layout={"width": "170px"}),
            "heldout_n": w.IntText(heldout_n, description="held-out n", layout={"width": "170px"}),
            "model": w.Dropdown(
                options=list(MODELS), value=model, description="model", layout={"width": "170px"}
            ),
            "seed": w.IntText(seed, description="seed", layout={"width": "140px"}),
            "curve": w.Checkbox(
                curve, description="learning curve", indent=False, layout={"width": "130px"}
            ),
            "curve_seeds": w.IntText(
                curve_seeds, description="curve seeds", layout={"width": "170px"}
            ),
        }
        self.train_button = w.Button(description="Train", icon="play", layout={"width": "90px"})
        self.train_button.add_class("gm-train")
        self.stop_button = w.Button(
            description="Stop", icon="stop", disabled=True, layout={"width": "90px"}
        )
        self.stop_button.add_class("gm-stop")
        self.train_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.stop(wait=False))
        self.progress = w.IntProgress(value=0, min=0, max=1, layout={"width": "240px"})
        self.progress.add_class("gm-progress")
        self.status = w.HTML()
        self.status.add_class("gm-predictor-status")
        self.message = w.HTML()
        self.message.add_class("gm-message")
        self.metrics = w.HTML()
        self.metrics.add_class("gm-predictor-metrics")
        self.scatter = VegaChart(prediction_scatter(), rows=[])
        self.importance_chart = VegaChart(importance_chart(), rows=[])
        self.curve_chart = VegaChart(learning_curve_chart(sizes=self.sizes), rows=[])
        self.curve_chart.layout.display = None if curve else "none"
        c = self.controls
        super().__init__(
            [
                w.HBox([c["train_n"], c["heldout_n"], c["model"], c["seed"]]),
                w.HBox(
                    [
                        c["curve"],
                        c["curve_seeds"],
                        self.train_button,
                        self.stop_button,
                        self.progress,
                        self.status,
                    ]
                ),
                self.message,
                self.metrics,
                w.HBox([self.scatter, self.importance_chart]),
                self.curve_chart,
            ]
        )
        self.add_class("gm-predictor")
        self._show()

    # ---- control (kernel's main thread) -------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> PredictorView:
        """Train with the view's current settings in the background (the Train button);
        returns self. Refused, and said, while a run is going."""
        if self.running:
            self.message.value = _error_html("a run is going: stop it or wait for it first")
            return self
        settings = {name: control.value for name, control in self.controls.items()}
        self._cancel = threading.Event()
        with self._lock:
            self.state, self.error, self.step = "running", None, "starting"
            self.done_steps = 0
            self.total_steps = 1
            self.result, self.importances = None, {}
            self.curve_points, self.curve = [], []
        self._thread = threading.Thread(
            target=self._work, args=(settings, self._cancel), name="gm-predictor", daemon=True
        )
        self._show()
        self._thread.start()
        return self

    def stop(self, wait: bool = True, timeout: float | None = 60) -> None:
        """Ask the run to stop (a curve stops after its current fit; a single fit ends);
        `wait`: until the thread has ended."""
        self._cancel.set()
        if wait:
            self.wait(timeout)

    def wait(self, timeout: float | None = None) -> State:
        """Block until the run ends (so nothing runs on when a notebook ends); the final state
        is shown at once. Returns the state."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self.throttle.flush()
        self._show()
        return self.state

    def close(self) -> None:
        """Stop any run and the pending refresh (also called on a half-built view)."""
        if hasattr(self, "_cancel"):
            self._cancel.set()
            self.throttle.cancel()
        super().close()

    # ---- the run (worker thread) --------------------------------------------------------------
    def _work(self, settings: dict[str, Any], cancel: threading.Event) -> None:
        train_n, heldout_n, seed = settings["train_n"], settings["heldout_n"], settings["seed"]
        model = settings["model"]
        try:
            plan: list[tuple[int, int]] = []
            if settings["curve"]:
                if settings["curve_seeds"] < 1:
                    raise PredictorError(
                        f"curve seeds must be 1 or more, got {settings['curve_seeds']}"
                    )
                seeds = [seed + k for k in range(settings["curve_seeds"])]
                sizes = curve_sizes(self.accuracy, heldout_n, self.sizes)
                plan = [(n, s) for n in sizes for s in seeds]
            self._progress(f"training {model} on {train_n:,} architectures", 0, 1 + len(plan))
            the_split = split(self.accuracy, train_n, heldout_n, seed)
            if cancel.is_set():
                raise _Stopped
            run = train_and_evaluate(
                self.space, self.dataset, self.accuracy, self.features, the_split, model,
                self.feature_set, seed,
            )  # fmt: skip
            with self._lock:
                self.result, self.importances = run, run.predictor.importances()
            if plan:
                points = learning_curve(
                    self.space, self.dataset, self.accuracy, self.features, heldout_n, model,
                    self.feature_set, seeds, sizes,
                )  # fmt: skip
                for k, (n, s) in enumerate(plan, 1):
                    self._progress(f"learning curve: train-n {n:,}, seed {s}", k, 1 + len(plan))
                    if cancel.is_set():
                        break
                    point = next(points)
                    with self._lock:
                        self.curve_points.append(point)
                        self.curve = curve_table(self.curve_points)
            stopped = len(self.curve_points) < len(plan)
            with self._lock:
                self.state, self.step = ("stopped" if stopped else "done"), ""
                if not stopped:
                    self.done_steps = self.total_steps
        except _Stopped:
            with self._lock:
                self.state, self.step = "stopped", ""
        except Exception as exc:  # shown in the view: the kernel and the widget keep working
            with self._lock:
                self.state, self.error, self.step = "error", str(exc), ""
        finally:
            self.throttle.submit(None)
            self.throttle.flush()

    def _progress(self, step: str, done: int, total: int) -> None:
        with self._lock:
            self.step, self.done_steps, self.total_steps = step, done, total
        self.throttle.submit(None)

    # ---- the view (any thread, throttled) -----------------------------------------------------
    def _show(self) -> None:
        with self._lock:
            state, error, step = self.state, self.error, self.step
            done, total = self.done_steps, self.total_steps
            run, importances, curve = self.result, dict(self.importances), list(self.curve)
        with self.hold_sync():
            self.progress.max = max(total, 1)
            self.progress.value = min(done, total)
            self.train_button.disabled = state == "running"
            self.stop_button.disabled = state != "running"
            where = f" · {html.escape(step)}" if step else ""
            self.status.value = f"<span class='gm-state' data-state='{state}'>{state}</span>{where}"
            self.message.value = _error_html(error) if error else ""
            self._show_run(run, importances)
            if curve or state == "running":
                self.curve_chart.set_rows(curve_rows(curve))
            if curve:
                self.curve_chart.layout.display = None

    def _show_run(self, run: Run | None, importances: dict[str, float]) -> None:
        if run is None:
            if self.scatter.rows:
                self.scatter.set_rows([])
                self.importance_chart.set_rows([])
                self.metrics.value = ""
            return
        heldout = run.split.heldout
        archs = [self.bench.arch(int(i)) for i in heldout]
        self.scatter.set_rows(prediction_rows(heldout, archs, run.predicted, run.truth))
        self.importance_chart.set_rows(importance_rows(importances, TOP_FEATURES))
        m = run.metrics
        label = (
            f"{run.predictor.model} on {len(run.split.train):,} labelled architectures "
            f"({run.predictor.feature_set} features), held-out"
        )
        title = scatter_title(m["kendall"], m["spearman"], label, len(heldout))
        self.metrics.value = (
            f"<div class='gm-predictor-title'>{html.escape(title)} · MAE {_fmt(m['mae'])} · "
            f"RMSE {_fmt(m['rmse'])} accuracy points</div>"
        )


class _Stopped(Exception):
    """Stop was asked before the first fit began."""


def _error_html(text: str) -> str:
    return f"<span class='gm-error'>{html.escape(text)}</span>"


def _fmt(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3f}"


__all__ = ["PredictorView"]
