"""What a proxy expression costs per architecture: the sum of the measured costs of the distinct
probe passes its terminals need (gm_lab.plugins.passes).

Why a model and not a stopwatch: the search scores thousands of expressions per second from the
cache, so it needs each one's use-time cost without probing anything. The costs of the passes
are measured once per machine (`gm-lab costs --measure`, gm_lab.probe.costs, stored in the
cache folder); until then gm_lab uses the costs measured where it was built
(`gm_lab/embedded/pass_costs.json`), labelled as such. Seconds of one CPU thread per
architecture; `reference` is one plain forward+backward measured in the same run, so costs read
as multiples of it on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deap import gp

from gm_lab.plugins import PROXIES, STATISTICS
from gm_lab.plugins.passes import terminal_passes

SHIPPED = Path(__file__).resolve().parents[1] / "embedded" / "pass_costs.json"


@dataclass(frozen=True)
class PassCosts:
    """Mean seconds per architecture of each probe pass (keys of `ProbeRecord.timings`) on one
    space and dataset, and of one plain forward+backward (`reference`)."""

    space: str
    dataset: str
    seconds: Mapping[str, float]
    reference: float
    source: str  # where the figures come from (the file, "measured here", ...)
    about: Mapping[str, Any] = field(default_factory=dict)  # machine, versions, sample

    def of(self, passes: Iterable[str]) -> float:
        """Seconds for these passes (`statistic:<name>`: the mean cost of one statistic); a
        pass never measured (a proxy registered since) counts as one plain forward+backward, a
        stated guess (`unmeasured`)."""
        return float(sum(self.seconds.get(_key(p), self.reference) for p in set(passes)))

    def unmeasured(self, passes: Iterable[str]) -> list[str]:
        return sorted(p for p in set(passes) if _key(p) not in self.seconds)

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "dataset": self.dataset,
            "seconds": dict(sorted(self.seconds.items())),
            "reference": self.reference,
            "about": dict(self.about),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str) -> PassCosts:
        try:
            return cls(
                space=str(data["space"]),
                dataset=str(data["dataset"]),
                seconds={str(k): float(v) for k, v in data["seconds"].items()},
                reference=float(data["reference"]),
                source=source,
                about=dict(data.get("about", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{source} is not a pass-costs file ({exc})") from None


def _key(pass_name: str) -> str:
    return "statistic" if pass_name.startswith("statistic:") else pass_name


def measured_path(space: str, dataset: str) -> Path:
    """Where `gm-lab costs --measure` stores this machine's pass costs."""
    from gm_lab.paths import cache_root

    return cache_root() / "costs" / f"{space}-{dataset}.json"


def load_pass_costs(space: str = "tss", dataset: str = "cifar10") -> PassCosts:
    """This machine's measured pass costs if there are some, else the shipped ones (for the
    same space; their dataset when this one was not measured there)."""
    mine = measured_path(space, dataset)
    if mine.is_file():
        return PassCosts.from_json(json.loads(mine.read_text()), f"measured here ({mine})")
    shipped = json.loads(SHIPPED.read_text())
    for entry in shipped["costs"]:
        if entry["space"] == space and entry["dataset"] == dataset:
            return PassCosts.from_json(entry, f"shipped estimate ({SHIPPED.name})")
    for entry in shipped["costs"]:
        if entry["space"] == space:
            return PassCosts.from_json(entry, f"shipped estimate for {entry['dataset']}")
    raise ValueError(
        f"no pass costs for space {space!r}: measure them with "
        f"`gm-lab costs --measure --space {space} --dataset {dataset}`"
    )


def expression_terminals(tree: gp.PrimitiveTree) -> list[str]:
    """The statistics and proxies an expression reads, in order of first use."""
    names = (node.name for node in tree if node.arity == 0)
    return list(dict.fromkeys(n for n in names if n in PROXIES or n in STATISTICS))


def expression_passes(tree: gp.PrimitiveTree) -> frozenset[str]:
    """The probe passes computing this expression runs (a constant one: none)."""
    return terminal_passes(expression_terminals(tree))


def expression_cost(tree: gp.PrimitiveTree, costs: PassCosts) -> float:
    """Seconds per architecture to compute this expression from scratch (see module doc)."""
    return costs.of(expression_passes(tree))
