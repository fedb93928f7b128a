"""One random generator per search, even though DEAP draws from the global `random` module.

DEAP's generators, crossovers, mutations, selections and `staticLimit` all call module-level
``random.choice`` / ``random.random`` ..., and expression constants come from
`gm_lab.expressions.draw_constant`, by default from the same module. Seeding and saving the
global generator around each generation would be enough for a script, but a search runs in a
background thread of a notebook kernel, where any other code may draw from `random` at the
same moment: its draws would shift the search's sequence (breaking "same seed, same run" and
exact resume) and the search's draws would shift the user's.

So the `random` name inside those DEAP modules is replaced by `ThreadRandom`, which forwards
every call to the generator bound to the *calling thread* with `bound_to(rng)`, and to the
global `random` module when none is bound: code outside a search sees no change at all. The
search's generator is a plain `random.Random`, so its state pickles into checkpoints.
"""

from __future__ import annotations

import importlib
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gm_lab.expressions import use_constant_rng

# Modules whose global `random` name is routed through ThreadRandom (all DEAP code the engine
# calls that draws random numbers; deap.algorithms too, for callers that use varAnd directly).
_DEAP_MODULES = (
    "deap.gp",
    "deap.tools.selection",
    "deap.tools.crossover",
    "deap.tools.mutation",
    "deap.algorithms",
)


class ThreadRandom:
    """Stands in for the `random` module: each attribute is taken from the generator bound to
    the calling thread, or from the `random` module itself when none is bound."""

    def __init__(self) -> None:
        self._local = threading.local()

    def current(self) -> Any:
        """The calling thread's generator, or the `random` module."""
        rng = getattr(self._local, "rng", None)
        return random if rng is None else rng

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)

    @contextmanager
    def bound_to(self, rng: random.Random) -> Iterator[random.Random]:
        """Make `rng` the calling thread's generator for the duration (re-entrant)."""
        before = getattr(self._local, "rng", None)
        self._local.rng = rng
        try:
            yield rng
        finally:
            self._local.rng = before


THREAD_RANDOM = ThreadRandom()
_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Route DEAP's and the expression constants' draws through THREAD_RANDOM (idempotent).

    Raises RuntimeError if a DEAP module no longer draws through a module-level `random`
    (a DEAP upgrade changed that): determinism would silently be lost otherwise.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in _DEAP_MODULES:
            module = importlib.import_module(name)
            if getattr(module, "random", None) not in (random, THREAD_RANDOM):
                raise RuntimeError(
                    f"{name} does not draw from the `random` module any more; "
                    "gm_lab.evolution cannot make its runs reproducible"
                )
            module.random = THREAD_RANDOM  # type: ignore[attr-defined]
        _installed = True


@contextmanager
def search_random(rng: random.Random) -> Iterator[random.Random]:
    """Within this block, every draw DEAP and `draw_constant` make *in this thread* comes from
    `rng`. Expression constants are re-routed on each entry, in case other code called
    `use_constant_rng` in between (outside a search, THREAD_RANDOM behaves like `random`)."""
    install()
    use_constant_rng(THREAD_RANDOM)  # type: ignore[arg-type]
    with THREAD_RANDOM.bound_to(rng):
        yield rng
