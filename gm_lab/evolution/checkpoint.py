"""Checkpoints: the whole engine state after every generation, as data that cannot run code.

One file, `<dir>/checkpoint.json`, replaced atomically after each generation (temporary file,
fsync, rename), so a crash or kill at any moment leaves the previous generation's checkpoint or
the new one, never a torn file. It is plain JSON: expressions in their JSON tree form, fitness
values, the run's `random.Random` and numpy generator states as numbers, the logbook, the
fitness cache, the config, the sample indices, a fingerprint of the ground truth they were
scored on, and the event history (for charts). A SHA-256 over the content detects any change to
the file (a flipped bit in a stored float included).

Resuming checks, and names what differs: the checksum, the format, the samples drawn now and
the accuracies behind them (a changed benchmark table), and the generation budget. Checkpoints of
gm_lab before format 2 were pickles, which can run code when loaded: they are refused, not read.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from deap import tools

from gm_lab import __version__
from gm_lab.errors import GmLabError
from gm_lab.evolution.engine import EngineState
from gm_lab.evolution.events import GenerationEvent
from gm_lab.evolution.operators import Individual, same_expression
from gm_lab.expressions import ExpressionError, from_json, to_json
from gm_lab.probe.cache import atomic_write
from gm_lab.provenance import truth_fingerprint  # noqa: F401  (of a split's accuracies)

CHECKPOINT_NAME = "checkpoint.json"
LEGACY_PICKLE = "checkpoint.pkl"
CHECKPOINT_FORMAT = 2


class CheckpointError(GmLabError):
    """A checkpoint is missing, damaged, of another format, or does not fit the data."""


@dataclass
class Checkpoint:
    """What `Search.resume_from` needs to continue a run exactly."""

    config: dict[str, Any]
    state: EngineState
    samples: dict[str, list[int]]  # "search" / "heldout" -> architecture indices
    history: list[GenerationEvent] = field(default_factory=list)
    truth_fingerprint: dict[str, str] = field(default_factory=dict)  # split -> SHA-256
    costs: dict[str, Any] | None = None  # tau+cost: the pass costs the run prices with
    format: int = CHECKPOINT_FORMAT
    gm_lab_version: str = __version__
    saved_at: str = ""

    @property
    def generation(self) -> int:
        return self.state.generation


def checkpoint_path(folder: Path | str) -> Path:
    """The checkpoint file of a folder (a path to the file itself is accepted too)."""
    path = Path(folder)
    return path if path.suffix in (".json", ".pkl") else path / CHECKPOINT_NAME


def has_checkpoint(folder: Path | str) -> bool:
    path = checkpoint_path(folder)
    return path.is_file() or path.with_name(LEGACY_PICKLE).is_file()


# ---- writing -------------------------------------------------------------------------------------
def save_checkpoint(folder: Path | str, checkpoint: Checkpoint) -> Path:
    """Write `checkpoint` into `folder` atomically (creating the folder)."""
    path = checkpoint_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.saved_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    content = {
        "format": checkpoint.format,
        "gm_lab_version": checkpoint.gm_lab_version,
        "saved_at": checkpoint.saved_at,
        "config": checkpoint.config,
        "samples": checkpoint.samples,
        "truth_fingerprint": checkpoint.truth_fingerprint,
        "history": [event.to_dict() for event in checkpoint.history],
        "state": _state_to_data(checkpoint.state),
    }
    if checkpoint.costs is not None:
        content["costs"] = checkpoint.costs
    document = {"sha256": _digest(content), "content": content}
    atomic_write(path, json.dumps(document, separators=(",", ":")).encode())
    return path


def _digest(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _state_to_data(state: EngineState) -> dict[str, Any]:
    version, internal, gauss = state.rng.getstate()
    return {
        "generation": state.generation,
        "population": [_individual_to_data(i) for i in state.population],
        "hall_of_fame": {
            "maxsize": state.hall_of_fame.maxsize,
            "items": [_individual_to_data(i) for i in state.hall_of_fame.items],
        },
        "logbook": {"header": list(state.logbook.header or []), "records": list(state.logbook)},
        "rng": {"version": version, "internal": list(internal), "gauss_next": gauss},
        "np_rng": state.np_rng.bit_generator.state,
        "fitness_cache": state.fitness_cache,
        "pareto_front": [_individual_to_data(i) for i in state.pareto_front],
    }


def _individual_to_data(individual: Individual) -> dict[str, Any]:
    values = list(individual.fitness.values) if individual.fitness.valid else None
    return {"tree": to_json(individual), "fitness": values, "key": individual.key}


# ---- reading -------------------------------------------------------------------------------------
def load_checkpoint(folder: Path | str) -> Checkpoint:
    """Read a checkpoint; CheckpointError says what is wrong when it cannot be used."""
    path = checkpoint_path(folder)
    legacy = path.with_name(LEGACY_PICKLE)
    if path.suffix == ".pkl" or (not path.is_file() and legacy.is_file()):
        raise CheckpointError(
            f"{legacy} is a pickled checkpoint of an older gm_lab: loading a pickle can run "
            "code, so it is not read; start the search again (its probes are cached)"
        )
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: nothing to resume")
    try:
        document = json.loads(path.read_bytes())
        content = document["content"]
        stored = document["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is damaged or not a gm_lab checkpoint ({type(exc).__name__})"
        ) from None
    if _digest(content) != stored:
        raise CheckpointError(
            f"checkpoint {path} was changed or damaged since it was written (its SHA-256 "
            "does not match its content); it is not resumed"
        )
    if content.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {content.get('format')}; this gm_lab reads "
            f"format {CHECKPOINT_FORMAT}"
        )
    try:
        return Checkpoint(
            config=content["config"],
            state=_state_from_data(content["state"]),
            samples=content["samples"],
            history=[GenerationEvent.from_dict(e) for e in content["history"]],
            truth_fingerprint=content.get("truth_fingerprint", {}),
            costs=content.get("costs"),
            format=content["format"],
            gm_lab_version=content.get("gm_lab_version", ""),
            saved_at=content.get("saved_at", ""),
        )
    except (KeyError, TypeError, ValueError, ExpressionError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from None


def _state_from_data(data: dict[str, Any]) -> EngineState:
    rng = random.Random()
    saved = data["rng"]
    rng.setstate((saved["version"], tuple(saved["internal"]), saved["gauss_next"]))
    np_rng = np.random.default_rng()
    np_rng.bit_generator.state = data["np_rng"]
    hof_data = data["hall_of_fame"]
    hall_of_fame = tools.HallOfFame(hof_data["maxsize"], similar=same_expression)
    hall_of_fame.items = [_individual_from_data(i) for i in hof_data["items"]]
    hall_of_fame.keys = [i.fitness for i in reversed(hall_of_fame.items)]  # ascending, as DEAP
    logbook = tools.Logbook()
    logbook.header = data["logbook"]["header"]
    for record in data["logbook"]["records"]:
        logbook.record(**record)
    return EngineState(
        generation=int(data["generation"]),
        population=[_individual_from_data(i) for i in data["population"]],
        hall_of_fame=hall_of_fame,
        logbook=logbook,
        rng=rng,
        np_rng=np_rng,
        fitness_cache={str(k): float(v) for k, v in data["fitness_cache"].items()},
        pareto_front=[_individual_from_data(i) for i in data.get("pareto_front", [])],
    )


def _individual_from_data(data: dict[str, Any]) -> Individual:
    individual = Individual(list(from_json(data["tree"])))
    if data["fitness"] is not None:
        individual.fitness.values = tuple(float(v) for v in data["fitness"])
    individual.key = data["key"]
    return individual
