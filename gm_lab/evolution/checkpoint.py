"""Checkpoints: the whole engine state after every generation, written atomically.

One file, `<dir>/checkpoint.pkl`, replaced after each generation: pickled to a temporary file
in the same folder, fsynced, then renamed over the old one, so a crash or kill at any moment
leaves either the previous generation's checkpoint or the new one, never a torn file.

It holds the config, the engine state (population, hall of fame, logbook, generation, the run's
`random.Random` and numpy generator states, fitness cache), the sample indices (checked when
resuming, so a changed benchmark cannot silently resume on other architectures) and the event
history (for charts). Pickle is used because DEAP trees, fitnesses, logbooks and generator
states pickle exactly; like any pickle, only load checkpoints you (or your search) wrote.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gm_lab import __version__
from gm_lab.errors import GmLabError
from gm_lab.evolution.engine import EngineState
from gm_lab.evolution.events import GenerationEvent
from gm_lab.probe.cache import atomic_write

CHECKPOINT_NAME = "checkpoint.pkl"
CHECKPOINT_FORMAT = 1


class CheckpointError(GmLabError):
    """A checkpoint is missing, damaged, of another format, or does not fit the data."""


@dataclass
class Checkpoint:
    """What `Search.resume_from` needs to continue a run exactly."""

    config: dict[str, Any]
    state: EngineState
    samples: dict[str, list[int]]  # "search" / "heldout" -> architecture indices
    history: list[GenerationEvent] = field(default_factory=list)
    format: int = CHECKPOINT_FORMAT
    gm_lab_version: str = __version__
    saved_at: str = ""

    @property
    def generation(self) -> int:
        return self.state.generation


def checkpoint_path(folder: Path | str) -> Path:
    """The checkpoint file of a folder (a path to the file itself is accepted too)."""
    path = Path(folder)
    return path if path.suffix == ".pkl" else path / CHECKPOINT_NAME


def has_checkpoint(folder: Path | str) -> bool:
    return checkpoint_path(folder).is_file()


def save_checkpoint(folder: Path | str, checkpoint: Checkpoint) -> Path:
    """Write `checkpoint` into `folder` atomically (creating the folder)."""
    path = checkpoint_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.saved_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write(path, pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load_checkpoint(folder: Path | str) -> Checkpoint:
    """Read a checkpoint; CheckpointError says what is wrong when it cannot be used."""
    path = checkpoint_path(folder)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: nothing to resume")
    try:
        with path.open("rb") as fh:
            checkpoint = pickle.load(fh)
    except Exception as exc:  # a truncated or foreign pickle fails in many ways
        raise CheckpointError(
            f"checkpoint {path} is damaged or not a gm_lab checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(checkpoint, Checkpoint):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint")
    if checkpoint.format != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {checkpoint.format}; this gm_lab reads "
            f"format {CHECKPOINT_FORMAT}"
        )
    return checkpoint
