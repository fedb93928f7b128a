"""Probe workers end with their parent, whatever kills it: no orphan holding a GB of memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

CLI = [sys.executable, "-m", "gm_lab.cli"]


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_workers_end_with_their_killed_parent(sig: int, tmp_path) -> None:
    env = {**os.environ, "GM_LAB_CACHE": str(tmp_path)}
    args = ["probe", "--n", "300", "--sample", "random", "--batch-size", "8", "--workers", "2"]
    parent = subprocess.Popen([*CLI, *args], env=env, stderr=subprocess.PIPE, text=True)
    me = psutil.Process(parent.pid)

    def workers() -> list[psutil.Process]:
        try:
            return [p for p in me.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
        except psutil.Error:
            return []

    family: list[psutil.Process] = []
    try:
        assert wait_for(lambda: len(workers()) >= 2, timeout=60), "no workers started"
        family = me.children(recursive=True)  # the workers and multiprocessing's helpers
        parent.send_signal(sig)
        parent.wait(timeout=30)
        assert wait_for(lambda: not any(alive(p) for p in family), timeout=15), (
            f"outlived their parent: {[(p.pid, p.ppid(), p.status()) for p in family if alive(p)]}"
        )
    finally:
        parent.kill()
        for p in family:
            if alive(p):
                p.kill()


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
