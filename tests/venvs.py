"""Fresh virtual environments for the packaging and Binder tests, layered over this one.

Installing gm_lab's whole stack (torch, JupyterLab, ...) into a new environment would download and
unpack gigabytes for every test run. Instead the new environment sees this test environment's
third-party packages through a `.pth` line naming its site-packages, and gets gm_lab itself only
from what is being tested (a wheel, `pip install .`). A `.pth` line merely appends that folder to
`sys.path`: the `.pth` files inside it -- among them the editable install of this checkout -- are
not processed, so gm_lab cannot leak in from the checkout (the tests assert where it comes from).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def layered_venv(path: Path) -> Path:
    """Create a venv at `path` that also sees this environment's packages; return its python."""
    # --without-pip: pip and setuptools come from the layer too (a venv's own older setuptools
    # would shadow the one torch requires, and `pip check` would rightly complain)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=300
    )
    python = path / "bin" / "python"
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run(
        [python, "-c", query], check=True, capture_output=True, text=True
    ).stdout.strip()
    Path(site, "_layered_over_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = path / "bin" / "pip"  # `pip` as scripts call it must install into this venv
    pip.write_text(f'#!/bin/sh\nexec "{python}" -m pip "$@"\n')
    pip.chmod(0o755)
    return python


def bare_env(venv: Path, home: Path) -> dict[str, str]:
    """A user's bare machine: the venv first on PATH, an empty HOME, no gm_lab or XDG settings."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GM_LAB_", "XDG_", "VIRTUAL_ENV", "PYTHON"))
    }
    outer = Path(sys.prefix) / "bin"  # this test environment's scripts must not be found first
    rest = [p for p in keep.get("PATH", "").split(os.pathsep) if p and Path(p) != outer]
    path = os.pathsep.join([str(venv / "bin"), *rest])
    return {**keep, "HOME": str(home), "PATH": path, "VIRTUAL_ENV": str(venv)}
