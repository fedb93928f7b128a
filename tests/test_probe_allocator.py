"""`keep_freed_memory`: freed blocks stay in the process, so reallocating them faults no page."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Five 4 MB tensors at once, freed, five more: by default glibc has served the first five by mmap
# and unmapped them, so the second round faults every page in again (glibc adapts its threshold
# over later rounds; a probe's mix of sizes keeps it from settling). Tuned, nothing is returned.
# The script imports what a probe worker has imported when it tunes malloc (gm_lab.probe.runner):
# with a near-empty heap glibc serves the blocks at the heap's top either way.
ROUNDS = """
import resource, sys, torch
import gm_lab.probe.runner
from gm_lab.probe.allocator import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory() and keep_freed_memory()  # applies, idempotent
faults = []
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [torch.empty(1 << 20).fill_(1.0) for _ in range(5)]
    del blocks
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults[1])
"""


def _faults_in_second_round(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_keep_freed_memory_stops_refaulting_freed_blocks():
    pages = 5 * (4 << 20) // 4096  # 5,120 pages of 4 KB
    assert _faults_in_second_round("default") > pages * 9 // 10  # every block again
    # tuned: 0, or one block when a small allocation landed between the freed ones
    assert _faults_in_second_round("tuned") <= pages // 2
