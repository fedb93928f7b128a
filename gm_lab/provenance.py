"""What results record about their inputs, in words a reader sees: never a silent stand-in.

A minibatch's provenance (`gm_lab.inputs.Minibatch.provenance()`, stored in every probe cache
and result) names its `source`: "cifar10-test" for a dataset's own images,
"<donor>-<split>-as-<dataset>" when another dataset's images stood in, "gaussian-noise" when
nothing did. This module turns that into the short phrase the CLI, the JSON results and the
widgets show. No torch: the evolution engine and the widgets use it without importing the probe.
"""

from __future__ import annotations

from typing import Any

from gm_lab.benchmark.spaces import DATASETS, DISPLAY_NAMES

GAUSSIAN_SOURCE = "gaussian-noise"


def standin_donor(provenance: dict[str, Any] | None) -> str | None:
    """The dataset whose images stood in ("cifar10"), "gaussian-noise", or None if real."""
    if not provenance or not provenance.get("is_standin"):
        return None
    source = str(provenance.get("source", ""))
    donor = next((d for d in DATASETS if source.startswith(f"{d}-")), None)
    return donor or source or None


def standin_label(provenance: dict[str, Any] | None) -> str | None:
    """ "stand-in images: CIFAR-10" (or "stand-in images: Gaussian noise"), None for real ones."""
    donor = standin_donor(provenance)
    if donor is None:
        return None
    name = "Gaussian noise" if donor == GAUSSIAN_SOURCE else DISPLAY_NAMES.get(donor, donor)
    return f"stand-in images: {name}"
