"""What a command used: wall seconds, CPU seconds and energy (issue #18 §6, "energy of a search").

GreenMachine asks what finding a proxy costs, not only what using one costs, so `gm-lab probe`
and `gm-lab evolve` end with a usage line and a `usage` record in their JSON.

- CPU seconds: user + system time of this process and of its children that have ended
  (`resource.getrusage`, RUSAGE_SELF + RUSAGE_CHILDREN), so probe worker processes count once
  their pool is shut down. Dask workers elsewhere do not.
- Energy: measured where the kernel exposes the CPU packages' RAPL counters
  (`/sys/class/powercap/intel-rapl:N/energy_uj`, readable: often root-only since 2020), which
  count the whole package (every process on the machine, idle draw included); else an estimate,
  CPU seconds x an assumed draw per busy core, labelled as such with its assumption. Neither
  counts a GPU (gm_lab probes on the CPU).

Another measured source plugs in as an `EnergyCounter` (`EnergyMeter(counter=...)`). No torch
import here: the CLI's fast paths may use it.
"""

from __future__ import annotations

import re
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

POWERCAP_ROOT = Path("/sys/class/powercap")
WATTS_PER_BUSY_CORE = 10.0  # a laptop/server core under load, roughly: the estimate's assumption
POLL_SECONDS = 60.0  # RAPL counters wrap (every ~10 min to hours): read often enough to see each
_PACKAGE = re.compile(r"intel-rapl:\d+")  # packages only: their sub-zones (:0:0) are inside them


@dataclass(frozen=True)
class Energy:
    """Joules and how they were obtained: "rapl" (measured) or "estimate", and what that
    assumes (always stated, so no figure is taken for more than it is)."""

    joules: float
    method: str
    assumption: str

    def to_dict(self) -> dict[str, Any]:
        return {"joules": self.joules, "method": self.method, "assumption": self.assumption}


@dataclass(frozen=True)
class Usage:
    """What one run used: wall and CPU seconds, and energy."""

    wall_s: float
    cpu_s: float
    energy: Energy

    def to_dict(self) -> dict[str, Any]:
        return {"wall_s": self.wall_s, "cpu_s": self.cpu_s, "energy": self.energy.to_dict()}

    def line(self) -> str:
        """The one line a command ends with."""
        measured = self.energy.method != "estimate"
        return (
            f"used {self.wall_s:.1f} s wall, {self.cpu_s:.1f} s CPU (this process and its "
            f"workers), {'' if measured else '≈ '}{_joules(self.energy.joules)} "
            f"({'measured' if measured else 'estimate'}: {self.energy.assumption})"
        )


def _joules(joules: float) -> str:
    if joules >= 3.6e5:
        return f"{joules:,.0f} J = {joules / 3.6e6:.3f} kWh"
    return f"{joules:.1f} J" if joules < 1000 else f"{joules:,.0f} J"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its ended (waited-for) children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class EnergyCounter(Protocol):
    """A measured energy source: joules since `start()`, read as often as it likes."""

    method: str
    assumption: str

    def start(self) -> None: ...

    def update(self) -> None:
        """Read the counters (called every POLL_SECONDS so wrap-arounds are not missed)."""

    def joules(self) -> float: ...


class RaplCounter:
    """The CPU packages' RAPL energy counters under a powercap folder (injectable for tests).

    Each counter runs from 0 to `max_energy_range_uj` and starts again: a reading lower than the
    last one wrapped once in between (reading every POLL_SECONDS keeps it at most once)."""

    method = "rapl"

    def __init__(self, zones: list[Path]) -> None:
        self.zones = zones
        self.ranges = [int((z / "max_energy_range_uj").read_text()) for z in zones]
        self.assumption = (
            f"RAPL counters of {', '.join(z.name for z in zones)}: the whole CPU package, every "
            f"process on the machine and its idle draw included; a GPU is not counted"
        )
        self._lock = threading.Lock()
        self._last: list[int] = []
        self._micro = 0

    @classmethod
    def find(cls, root: Path | None = None) -> RaplCounter | None:
        """The counters of every package under `root` (default POWERCAP_ROOT), or None when
        there is none we can read (no powercap, or energy_uj root-only)."""
        root = POWERCAP_ROOT if root is None else Path(root)
        try:
            zones = sorted(p for p in root.iterdir() if _PACKAGE.fullmatch(p.name))
            counter = cls(zones) if zones else None
            if counter is not None:
                counter._read()
            return counter
        except (OSError, ValueError):
            return None

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text()) for z in self.zones]

    def start(self) -> None:
        with self._lock:
            self._last, self._micro = self._read(), 0

    def update(self) -> None:
        with self._lock:
            now = self._read()
            for before, after, top in zip(self._last, now, self.ranges, strict=True):
                self._micro += after - before if after >= before else after + top - before
            self._last = now

    def joules(self) -> float:
        with self._lock:
            return self._micro / 1e6


class EnergyMeter:
    """Measures one run: `with EnergyMeter() as meter: ...` then `meter.usage`, or
    `meter = EnergyMeter().start()` ... `usage = meter.stop()`.

    `counter`: a measured source; default: the RAPL counters under `powercap_root` (default
    POWERCAP_ROOT) when readable, else none (the estimate, `watts_per_core` x CPU seconds)."""

    def __init__(
        self,
        counter: EnergyCounter | None = None,
        powercap_root: Path | None = None,
        watts_per_core: float = WATTS_PER_BUSY_CORE,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.counter = counter if counter is not None else RaplCounter.find(powercap_root)
        self.watts_per_core = watts_per_core
        self.poll_seconds = poll_seconds
        self.usage: Usage | None = None
        self._began: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> EnergyMeter:
        self._began = (time.perf_counter(), cpu_seconds())
        if self.counter is not None:
            self.counter.start()
            self._stop.clear()
            self._poller = threading.Thread(target=self._poll, name="gm-energy", daemon=True)
            self._poller.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.counter.update()  # type: ignore[union-attr]
            except OSError:
                return  # counter gone: the final read in stop() decides

    def stop(self) -> Usage:
        """The usage since start(); also kept as `self.usage`."""
        if self._began is None:
            raise RuntimeError("EnergyMeter.stop() before start()")
        wall = time.perf_counter() - self._began[0]
        cpu = max(0.0, cpu_seconds() - self._began[1])
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        energy = None
        if self.counter is not None:
            try:
                self.counter.update()
                energy = Energy(self.counter.joules(), self.counter.method, self.counter.assumption)
            except OSError:
                energy = None  # unreadable now: estimate rather than report a partial count
        self.usage = Usage(wall, cpu, energy or self.estimate(cpu))
        return self.usage

    def estimate(self, cpu_s: float) -> Energy:
        """CPU seconds x the assumed watts per busy core."""
        return Energy(
            cpu_s * self.watts_per_core,
            "estimate",
            f"{self.watts_per_core:g} W per busy CPU core x CPU seconds; no RAPL energy "
            f"counter readable here; a GPU is not counted",
        )

    def __enter__(self) -> EnergyMeter:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
