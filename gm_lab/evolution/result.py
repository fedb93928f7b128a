"""The outcome of a search: the best expressions and the classic proxies, judged on every split.

Every expression of the hall of fame is scored (Kendall τ, Spearman ρ) on the search sample, on
the held-out sample the search never saw, and on other datasets whose probes were cached; the
classic proxies are scored on the same splits, so the table answers "did evolution beat what we
had?". Results save as JSON with expressions in text form, the form `gm-lab score` and the
expression editor accept; loading re-parses (and so validates) them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from deap import gp

from gm_lab.evolution.config import Aggregate, SearchConfig
from gm_lab.evolution.fitness import Split, aggregate, correlations
from gm_lab.expressions import parse, simplify, to_text
from gm_lab.probe.cache import atomic_write
from gm_lab.provenance import standin_label

RESULT_FORMAT = 1


@dataclass(frozen=True)
class Correlation:
    """One expression on one split."""

    dataset: str
    split: str  # "search" | "heldout"
    n: int
    kendall: float
    spearman: float
    searched: bool  # False: a dataset the search did not use (transfer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n": self.n,
            "kendall": _finite_or_none(self.kendall),
            "spearman": _finite_or_none(self.spearman),
            "searched": self.searched,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Correlation:
        return cls(
            dataset=str(data["dataset"]),
            split=str(data["split"]),
            n=int(data["n"]),
            kendall=_nan_if_none(data["kendall"]),
            spearman=_nan_if_none(data["spearman"]),
            searched=bool(data["searched"]),
        )


@dataclass(frozen=True)
class ExpressionReport:
    """An expression (or classic proxy) with its correlations on every split.

    The summary figures aggregate the searched datasets the way the fitness does; None where
    there is no such split (no held-out sample).
    """

    expr: str  # canonical text form; a classic proxy's name is a valid expression too
    size: int  # nodes of `expr`
    fitness: float | None  # None for classic proxies
    rows: tuple[Correlation, ...]
    search_kendall: float | None
    search_spearman: float | None
    heldout_kendall: float | None
    heldout_spearman: float | None
    kind: str = "evolved"  # "evolved" | "classic"
    cost: float | None = None  # tau+cost: seconds per architecture to compute it from scratch
    cost_ratio: float | None = None  # the same, as a multiple of one plain forward+backward

    def priced(self, seconds: float, ratio: float) -> ExpressionReport:
        """This report with its cost (objective tau+cost)."""
        return replace(self, cost=float(seconds), cost_ratio=float(ratio))

    @classmethod
    def build(
        cls,
        expr: str,
        size: int,
        fitness: float | None,
        rows: Sequence[Correlation],
        how: Aggregate,
        kind: str = "evolved",
    ) -> ExpressionReport:
        def summary(split: str, metric: str) -> float | None:
            values = [getattr(r, metric) for r in rows if r.searched and r.split == split]
            return aggregate(values, how) if values else None

        return cls(
            expr=expr,
            size=size,
            fitness=fitness,
            rows=tuple(rows),
            search_kendall=summary("search", "kendall"),
            search_spearman=summary("search", "spearman"),
            heldout_kendall=summary("heldout", "kendall"),
            heldout_spearman=summary("heldout", "spearman"),
            kind=kind,
        )

    @cached_property
    def tree(self) -> gp.PrimitiveTree:
        """The parsed expression (ExpressionError if the text is not a valid expression)."""
        return parse(self.expr)

    def row(self, dataset: str, split: str) -> Correlation | None:
        for r in self.rows:
            if r.dataset == dataset and r.split == split:
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "expr": self.expr,
            "kind": self.kind,
            "size": self.size,
            "fitness": _finite_or_none(self.fitness),
            "search_kendall": _finite_or_none(self.search_kendall),
            "search_spearman": _finite_or_none(self.search_spearman),
            "heldout_kendall": _finite_or_none(self.heldout_kendall),
            "heldout_spearman": _finite_or_none(self.heldout_spearman),
            "rows": [r.to_dict() for r in self.rows],
        } | (
            {}  # only priced reports carry costs: a tau-only result reads as it always did
            if self.cost is None
            else {
                "cost_seconds": _finite_or_none(self.cost),
                "cost_ratio": _finite_or_none(self.cost_ratio),
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExpressionReport:
        def number(key: str) -> float | None:  # null: no such split (or it ranked nothing)
            value = data.get(key)
            return None if value is None else float(value)

        fitness = data.get("fitness")
        return cls(
            expr=str(data["expr"]),
            size=int(data["size"]),
            fitness=None if fitness is None else float(fitness),
            rows=tuple(Correlation.from_dict(r) for r in data.get("rows", [])),
            search_kendall=number("search_kendall"),
            search_spearman=number("search_spearman"),
            heldout_kendall=number("heldout_kendall"),
            heldout_spearman=number("heldout_spearman"),
            kind=str(data.get("kind", "evolved")),
            cost=number("cost_seconds"),
            cost_ratio=number("cost_ratio"),
        )


def report_tree(
    tree: gp.PrimitiveTree, fitness: float | None, splits: Sequence[Split], how: Aggregate
) -> ExpressionReport:
    """Score `tree`'s canonical form (what the fitness scored) on every split."""
    canonical = simplify(tree)
    rows = [
        Correlation(s.dataset, s.role, len(s), **s.correlations(canonical), searched=s.searched)
        for s in splits
    ]
    return ExpressionReport.build(to_text(canonical), len(canonical), fitness, rows, how)


def report_classic(name: str, splits: Sequence[Split], how: Aggregate) -> ExpressionReport:
    """A classic proxy, scored from its probed values exactly as `gm-lab score` does."""
    rows = [
        Correlation(
            s.dataset,
            s.role,
            len(s),
            **correlations(np.asarray(s.arrays.proxies[name], dtype=float), s.truth),
            searched=s.searched,
        )
        for s in splits
    ]
    return ExpressionReport.build(name, 1, None, rows, how, kind="classic")


@dataclass
class SearchResult:
    """Hall of fame and classic proxies, judged on every split, plus how the run went."""

    config: SearchConfig
    generation: int  # last finished generation (config.gens when finished)
    hall_of_fame: list[ExpressionReport]  # best first
    classic: list[ExpressionReport]
    samples: dict[str, Any] = field(default_factory=dict)
    logbook: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # prepare / evolve
    probe: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None  # gm_lab.provenance.run_provenance (set by the CLI)
    pareto_front: list[ExpressionReport] = field(default_factory=list)  # tau+cost, cheapest first
    costs: dict[str, Any] | None = None  # tau+cost: the pass costs expressions were priced with
    # set by `gm-lab evolve`: what this run used (gm_lab.energy.Usage.to_dict), and what the best
    # expression costs per architecture at use time (gm_lab.cli.probe.score_cost)
    usage: dict[str, Any] | None = None
    best_cost: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.generation >= self.config.gens

    @property
    def best(self) -> ExpressionReport | None:
        return self.hall_of_fame[0] if self.hall_of_fame else None

    @property
    def standin_images(self) -> dict[str, str]:
        """Per searched dataset whose own images were absent: "stand-in images: CIFAR-10"."""
        labels = {d: standin_label(p.get("provenance")) for d, p in self.probe.items()}
        return {d: label for d, label in labels.items() if label}

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `best` (the top expression) plus everything else."""
        best = self.best
        return _json_safe(
            {
                "format": RESULT_FORMAT,
                "best": best.to_dict() if best else None,
                "hall_of_fame": [r.to_dict() for r in self.hall_of_fame],
                "classic": [r.to_dict() for r in self.classic],
                "generation": self.generation,
                "finished": self.finished,
                "config": self.config.to_dict(),
                "samples": self.samples,
                "logbook": self.logbook,
                "seconds": self.seconds,
                "probe": self.probe,
                "standin_images": self.standin_images,
                "provenance": self.provenance,
            }
            | (
                {}  # a tau-only result reads as it always did
                if self.config.objective == "tau"
                else {
                    "pareto_front": [r.to_dict() for r in self.pareto_front],
                    "costs": self.costs,
                }
            )
            | {  # only the CLI measures these: a result from the Python API reads as it did
                key: value
                for key, value in (("usage", self.usage), ("best_cost", self.best_cost))
                if value is not None
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        """The result of `to_dict` output; every expression is re-parsed (ExpressionError if one
        is not valid)."""
        if data.get("format") != RESULT_FORMAT:
            raise ValueError(f"result format {data.get('format')!r}; expected {RESULT_FORMAT}")
        result = cls(
            config=SearchConfig.from_dict(data["config"]),
            generation=int(data["generation"]),
            hall_of_fame=[ExpressionReport.from_dict(r) for r in data["hall_of_fame"]],
            classic=[ExpressionReport.from_dict(r) for r in data["classic"]],
            samples=data.get("samples", {}),
            logbook=data.get("logbook", []),
            seconds=data.get("seconds", {}),
            probe=data.get("probe", {}),
            provenance=data.get("provenance"),
            pareto_front=[ExpressionReport.from_dict(r) for r in data.get("pareto_front", [])],
            costs=data.get("costs"),
            usage=data.get("usage"),
            best_cost=data.get("best_cost"),
        )
        for report in [*result.hall_of_fame, *result.pareto_front]:
            _ = report.tree  # parse now: a damaged file fails here, not later
        return result

    def save(self, path: Path | str) -> Path:
        """Write the result as JSON (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_dict(), indent=1).encode())
        return path

    @classmethod
    def load(cls, path: Path | str) -> SearchResult:
        return cls.from_dict(json.loads(Path(path).read_text()))

    # ---- text ---------------------------------------------------------------------------------
    def table(self, top: int = 3, width: int = 48) -> str:
        """The evolved proxies vs every classic proxy, per dataset: τ and ρ on the search and
        held-out samples; classic proxies sorted by held-out τ (search τ without held-out)."""
        datasets = list(dict.fromkeys(r.dataset for r in self._all_rows()))
        lines = []
        for dataset in datasets:
            searched = dataset in self.config.datasets
            lines.append(f"{dataset} ({'searched' if searched else 'not searched: transfer'})")
            lines.append(
                f"  {'proxy':<{width}} {'size':>4}  {'search τ':>8} {'search ρ':>8}  "
                f"{'held-out τ':>10} {'held-out ρ':>10}"
            )
            evolved = [(f"#{i + 1} {r.expr}", r) for i, r in enumerate(self.hall_of_fame[:top])]
            classic = sorted(self.classic, key=lambda r: _sort_key(r, dataset), reverse=True)
            for label, report in evolved + [(r.expr, r) for r in classic]:
                search, heldout = report.row(dataset, "search"), report.row(dataset, "heldout")
                if search is None and heldout is None:
                    continue
                shown = label if len(label) <= width else label[: width - 3] + "..."
                lines.append(
                    f"  {shown:<{width}} {report.size:>4}  {_cell(search, 'kendall', 8)} "
                    f"{_cell(search, 'spearman', 8)}  {_cell(heldout, 'kendall', 10)} "
                    f"{_cell(heldout, 'spearman', 10)}"
                )
        return "\n".join(lines)

    def front_table(self, width: int = 48) -> str:
        """The Pareto front (tau+cost), cheapest first: correlation on the search sample (as the
        fitness has it) and held-out Kendall τ against seconds per architecture and the multiple
        of one forward+backward; then the classic proxies priced the same way, for reference.
        "" when the search had a single objective."""
        if self.config.objective == "tau":
            return ""
        metric = "τ" if self.config.metric == "kendall" else "ρ"
        source = (self.costs or {}).get("source", "?")
        reference = (self.costs or {}).get("reference")
        fb = f"{reference * 1000:.1f} ms" if reference else "?"
        lines = [
            f"Pareto front: {metric} on the search sample vs cost per architecture "
            f"(pass costs: {source}; one forward+backward = {fb})",
            f"  {'expression':<{width}} {'size':>4}  {'search ' + metric:>8} {'held-out τ':>10}  "
            f"{'s/arch':>9} {'× fwd+bwd':>9}",
        ]

        def line(label: str, report: ExpressionReport) -> str:
            shown = label if len(label) <= width else label[: width - 3] + "..."
            search = getattr(report, f"search_{self.config.metric}")
            return (
                f"  {shown:<{width}} {report.size:>4}  {_number(search, 8)} "
                f"{_number(report.heldout_kendall, 10)}  {_number(report.cost, 9, '.4f')} "
                f"{_number(report.cost_ratio, 9, '.2f')}"
            )

        lines += [line(f"#{i + 1} {r.expr}", r) for i, r in enumerate(self.pareto_front)]
        priced = sorted((r for r in self.classic if r.cost is not None), key=lambda r: r.cost)
        if priced:
            lines.append("  classic proxies (reference):")
            lines += [line(r.expr, r) for r in priced]
        return "\n".join(lines)

    def _all_rows(self) -> list[Correlation]:
        return [row for r in self.hall_of_fame + self.classic for row in r.rows]


def _sort_key(report: ExpressionReport, dataset: str) -> float:
    row = report.row(dataset, "heldout") or report.row(dataset, "search")
    value = row.kendall if row is not None else math.nan
    return -math.inf if math.isnan(value) else value


def _cell(row: Correlation | None, metric: str, width: int) -> str:
    if row is None:
        return f"{'-':>{width}}"
    value = getattr(row, metric)
    return f"{'nan':>{width}}" if math.isnan(value) else f"{value:>+{width}.4f}"


def _number(value: float | None, width: int, spec: str = "+.4f") -> str:
    if value is None or not math.isfinite(value):
        return f"{'-':>{width}}"
    return f"{value:{spec}}".rjust(width)


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)


def _json_safe(value: Any) -> Any:
    """NaN/inf -> null (strict JSON), numpy scalars -> Python numbers, tuples -> lists."""
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
