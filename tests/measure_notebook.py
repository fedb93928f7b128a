"""Run a notebook headless and report its wall time and peak memory (for the Binder emulation).

Usage: python measure_notebook.py NOTEBOOK OUT.json. Executes NOTEBOOK with nbclient in a fresh
kernel (cwd: the notebook's folder) while a thread samples the resident memory of this process and
all its descendants (the kernel and any probe workers) every 0.1 s; Binder's memory limit applies
to all of them together. Writes {"seconds", "peak_tree_mb", "peak_kernel_mb", "errors"} to OUT.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of `process` and every descendant still alive."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def main(notebook: Path, out: Path) -> None:
    me = psutil.Process()
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss(me))

    sampler = threading.Thread(target=sample, daemon=True)
    nb = nbformat.read(notebook, as_version=4)
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
        client.execute()
    except CellExecutionError as exc:
        errors.append(str(exc)[-2000:])
    finally:
        done.set()
        sampler.join()
    kernel_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    report = {
        "seconds": round(time.perf_counter() - began, 1),
        "peak_tree_mb": round(peak[0] / 2**20, 1),
        "peak_kernel_mb": round(kernel_kb / 2**10, 1),
        "errors": errors,
    }
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))
