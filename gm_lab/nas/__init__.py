"""Zero-cost NAS on a benchmark with hardware limits (the engine behind `gm-lab nas`).

- `gm_lab.nas.protocol`: the standard protocol as a pure function of whole-space score vectors
  (draws, constrained candidates, picks per method, mean ± std over runs). No torch, no CLI:
  scores come from the caller (`gm_lab.cli.nas.expression_scores` fills them from the probe
  cache), so the engine runs on planted data as on real proxies.
"""

from gm_lab.nas.protocol import (
    NO_PICK,
    ORACLE,
    RANDOM,
    Draws,
    MethodResult,
    NasResult,
    ProtocolError,
    draw,
    pick_best,
    pick_random,
    run_protocol,
)

__all__ = [
    "NO_PICK",
    "ORACLE",
    "RANDOM",
    "Draws",
    "MethodResult",
    "NasResult",
    "ProtocolError",
    "draw",
    "pick_best",
    "pick_random",
    "run_protocol",
]
