"""Measure what each probe pass costs on this machine (the figures gm_lab.expressions.cost sums).

Per architecture of a small random sample, one torch thread (as the probe workers):
- a lean probe of one backward-needing proxy: the network's build, the plain forward and
  backward the lazy probe runs for such expressions;
- a full probe: the passes only it runs (input Jacobian, GraSP, ZiCo's split, the Gaussian
  batch, Zen) and every shared proxy's own time; the statistics' time is divided by their
  number (`statistic`: seconds per statistic);
- each standalone proxy defined on the space, as `score_standalone` runs it;
- the reference: one plain forward+backward of the cross-entropy (channels_last), the unit
  issue-style costs are quoted in ("1.2 × a forward+backward").
Means over the sample, seconds of CPU wall time per architecture.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterable
from datetime import datetime, timezone

import numpy as np
import torch
import torch.nn.functional as F

from gm_lab.benchmark.spaces import NUM_CLASSES
from gm_lab.expressions.cost import PassCosts, measured_path
from gm_lab.networks import build_network
from gm_lab.plugins import PROXIES, STATISTICS
from gm_lab.probe.probe import (
    default_inputs,
    probe_architecture,
    score_standalone,
    shared_proxies,
)
from gm_lab.probe.record import ProbeConfig

#: The full probe's keys that a lean probe's own measurement replaces (see the module doc).
_LEAN_KEYS = ("build", "prepare", "forward", "backward")


def plain_step_seconds(space: str, arch: str, config: ProbeConfig, images, labels) -> float:
    """One plain forward+backward of the cross-entropy on the probe's batch (network built
    beforehand, channels_last, train mode): the unit of cost."""
    net = build_network(space, arch, NUM_CLASSES[config.dataset], config.seed)
    net = net.to(memory_format=torch.channels_last).train()
    x = images.contiguous(memory_format=torch.channels_last)
    start = time.perf_counter()
    loss = F.cross_entropy(net(x), labels)
    loss.backward()
    return time.perf_counter() - start


def measure_pass_costs(
    archs: Iterable[str],
    config: ProbeConfig,
    standalone: Iterable[str] | None = None,
    progress: bool = True,
) -> PassCosts:
    """Mean seconds per pass over `archs` (see the module doc). `standalone`: the standalone
    proxies to time (default: every one defined on the space)."""
    from tqdm.auto import tqdm

    archs = list(archs)
    if not archs:
        raise ValueError("measure pass costs on at least one architecture")
    if standalone is None:
        standalone = [
            s.name for s in PROXIES.specs() if s.standalone and s.applies_to(config.space)
        ]
    standalone = list(standalone)
    batch, noise = default_inputs(config)
    samples: dict[str, list[float]] = {}
    reference: list[float] = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _warm_up(archs[0], config, batch, noise, standalone)
        for i, arch in enumerate(tqdm(archs, desc="pass costs", unit="arch", disable=not progress)):
            reference.append(
                plain_step_seconds(config.space, arch, config, batch.images, batch.labels)
            )
            lean = probe_architecture(
                i, arch, config, batch, noise, proxies=["snip"], statistics=[]
            )
            full = probe_architecture(i, arch, config, batch, noise, proxies=shared_proxies())
            timings = {k: v for k, v in full.timings.items() if k not in _LEAN_KEYS}
            timings.update({k: lean.timings[k] for k in _LEAN_KEYS})
            timings["statistic"] = timings.pop("statistics") / max(len(STATISTICS.names()), 1)
            timings.pop("total", None)
            if standalone:
                own = score_standalone(i, arch, config, batch, noise, names=standalone)
                timings.update(own.timings)
            for key, value in timings.items():
                samples.setdefault(key, []).append(value)
    finally:
        torch.set_num_threads(before)
    return PassCosts(
        space=config.space,
        dataset=config.dataset,
        seconds={k: float(np.mean(v)) for k, v in samples.items()},
        reference=float(np.mean(reference)),
        source="measured here",
        about={
            "architectures": len(archs),
            "threads": 1,
            "batch_size": config.batch_size,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpus": _cpu_count(),
            "torch": torch.__version__,
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )


def _warm_up(arch: str, config: ProbeConfig, batch, noise, standalone: list[str]) -> None:
    """One untimed round: first calls pay one-off costs (kernel selection, a data-free proxy's
    table of the whole space) that are not per architecture."""
    plain_step_seconds(config.space, arch, config, batch.images, batch.labels)
    probe_architecture(0, arch, config, batch, noise, proxies=["snip"], statistics=[])
    if standalone:
        score_standalone(0, arch, config, batch, noise, names=standalone)


def save_pass_costs(costs: PassCosts) -> str:
    """Store this machine's costs where `load_pass_costs` finds them; returns the path."""
    path = measured_path(costs.space, costs.dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(costs.to_json(), indent=1) + "\n")
    tmp.replace(path)
    return str(path)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
