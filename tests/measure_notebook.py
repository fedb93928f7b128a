"""Run a notebook headless and report its wall time and peak memory (for the Binder emulation).

Usage: python measure_notebook.py NOTEBOOK OUT.json. Executes NOTEBOOK with nbclient in a fresh
kernel (cwd: the notebook's folder). Binder's memory limit applies to all processes of a session
together, so memory is measured three ways:

- `peak_tree_mb`: a thread samples the resident memory of this process plus all its descendants
  (the kernel and any probe workers it starts) every 0.1 s and keeps the largest sum;
- `peak_kernel_mb`: `getrusage(RUSAGE_CHILDREN).ru_maxrss` once the kernel has exited and been
  reaped -- the kernel's own high-water mark, exact but per process (not a sum);
- `peak_runner_mb`: `getrusage(RUSAGE_SELF).ru_maxrss` of this runner (nbclient, no torch).

After the notebook's last cell one more cell (not saved to the notebook) reports what the kernel
ran on: its interpreter, where gm_lab was imported from, the data-related environment and where
the benchmark table and CIFAR-10 images came from, so that the caller can check the emulation
really ran the installed package on the embedded default. Writes {"seconds", "peak_tree_mb",
"peak_kernel_mb", "peak_runner_mb", "slowest_cells", "kernel", "errors"} to OUT.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

MARK = "MEASURE_NOTEBOOK_KERNEL="
KERNEL_FACTS = f"""
import json as _json, os as _os, sys as _sys
import gm_lab as _gm_lab
from gm_lab.data.info import data_sources as _data_sources

_origins = {{p.part: p.origin for p in _data_sources()}}
print({MARK!r} + _json.dumps({{
    "executable": _sys.executable,
    "prefix": _sys.prefix,
    "gm_lab": _gm_lab.__file__,
    "env": {{k: _os.environ.get(k) for k in (
        "GM_LAB_DATA", "GM_LAB_CACHE", "HOME", "GM_LAB_NB_N", "GM_LAB_NB_GENS", "GM_LAB_NB_POP",
        "GM_LAB_NB_BATCH", "GM_LAB_NB_WORKERS")}},
    "origins": {{k: _origins[k] for k in ("tss table", "cifar10 images")}},
}}))
"""


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of `process` and every descendant still alive."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """A cell's run time from the timestamps nbclient records (kernel busy to idle)."""
    stamps = cell.get("metadata", {}).get("execution", {})
    try:
        began, ended = (
            datetime.fromisoformat(stamps[k].replace("Z", "+00:00"))
            for k in ("iopub.status.busy", "iopub.status.idle")
        )
    except KeyError:
        return 0.0
    return (ended - began).total_seconds()


def kernel_facts(cell: nbformat.NotebookNode) -> dict:
    """The JSON the appended cell printed, or {} if it did not run."""
    for out in cell.get("outputs", []):
        for line in out.get("text", "").splitlines():
            if line.startswith(MARK):
                return json.loads(line.removeprefix(MARK))
    return {}


def main(notebook: Path, out: Path) -> None:
    me = psutil.Process()
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss(me))

    sampler = threading.Thread(target=sample, daemon=True)
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(KERNEL_FACTS))
    client = NotebookClient(
        nb,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
        store_widget_state=False,
    )
    errors: list[str] = []
    began = time.perf_counter()
    sampler.start()
    try:
        client.execute()  # starts the kernel, runs every cell, shuts the kernel down and reaps it
    except CellExecutionError as exc:
        errors.append(str(exc)[-2000:])
    finally:
        done.set()
        sampler.join()
    seconds = time.perf_counter() - began
    kernel_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    runner_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timed = sorted(
        ((cell_seconds(c), i) for i, c in enumerate(nb.cells) if c.cell_type == "code"),
        reverse=True,
    )
    report = {
        "seconds": round(seconds, 1),
        "peak_tree_mb": round(peak[0] / 2**20, 1),
        "peak_kernel_mb": round(kernel_kb / 2**10, 1),
        "peak_runner_mb": round(runner_kb / 2**10, 1),
        "slowest_cells": [{"cell": i, "seconds": round(s, 1)} for s, i in timed[:3]],
        "kernel": kernel_facts(nb.cells[-1]),
        "errors": errors,
    }
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))
