"""Binder, emulated step by step as repo2docker runs it: a fresh environment,
binder/requirements.txt, binder/postBuild, then binder/start around the teaching notebook, with no
data folder, an empty HOME and no network use. repo2docker itself needs a Docker engine, which CI
does not have.

The lesson runs under `binder/start` (batch 32, probing in the kernel: what sets the memory
peak) but on a smaller sample than Binder's own (`SMALL`: probing is nearly all of the time);
`GM_LAB_BINDER_FULL=1 python -m pytest tests/test_binder.py -s` runs Binder's own sizes, the
figures of benchmarks/RESULTS.md ("Runs anywhere").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.venvs import bare_env, layered_venv

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
LESSON = REPO / "notebooks" / "02-teaching-zero-cost-nas.ipynb"
BINDER_MEMORY_MB = 2048  # Binder gives a session 1-2 GB
SMALL = {"GM_LAB_NB_N": "30", "GM_LAB_NB_GENS": "4", "GM_LAB_NB_POP": "20"}


def test_binder_build_downloads_nothing() -> None:
    for name in ("postBuild", "start"):
        text = (BINDER / name).read_text()
        assert not re.search(r"curl|wget|gdown|https?://", text), name
    assert (BINDER / "start").read_text().rstrip().endswith('exec "$@"')
    assert "GM_LAB_DATA=" not in (BINDER / "start").read_text()


@pytest.mark.slow
def test_repo2docker_steps_run_the_lesson_on_the_embedded_data(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = layered_venv(venv)
    home = tmp_path / "home"
    home.mkdir()
    env = bare_env(venv, home)

    def run(*args: str, timeout: int = 900, **extra: str) -> subprocess.CompletedProcess:
        out = subprocess.run(
            args, capture_output=True, text=True, env={**env, **extra}, cwd=REPO, timeout=timeout
        )
        assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
        return out

    # 1. requirements.txt: CPU torch (already satisfied here, so its index is not contacted)
    run(str(python), "-m", "pip", "install", "-q", "-r", str(BINDER / "requirements.txt"))
    # 2. postBuild: installs gm_lab (not editable) and reports the embedded data
    built = run("bash", str(BINDER / "postBuild"))
    assert "embedded default" in built.stdout
    where = run(str(python), "-P", "-c", "import gm_lab; print(gm_lab.__file__)").stdout
    assert Path(where.strip()).is_relative_to(venv)  # installed, not the checkout
    settings = venv / "share/jupyter/lab/settings/overrides.d/gm_lab.json"
    notification = json.loads(settings.read_text())["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    # 3. start wraps the session: the lesson runs headless with Binder's batch and in-kernel
    # probing (a smaller sample unless GM_LAB_BINDER_FULL is set; module docstring)
    report_file = tmp_path / "report.json"
    measure = Path(__file__).with_name("measure_notebook.py")
    sizes = {} if os.environ.get("GM_LAB_BINDER_FULL") else SMALL
    run(
        "bash", str(BINDER / "start"), str(python), str(measure), str(LESSON), str(report_file),
        timeout=1800, **sizes,
    )  # fmt: skip
    report = json.loads(report_file.read_text())
    print(f"Binder emulation: {report}")
    assert report["errors"] == []
    kernel = report["kernel"]
    assert kernel["env"]["GM_LAB_NB_BATCH"] == "32" and kernel["env"]["GM_LAB_NB_WORKERS"] == "0"
    assert kernel["env"]["GM_LAB_DATA"] is None
    assert set(kernel["origins"].values()) == {"embedded default"}
    assert Path(kernel["gm_lab"]).is_relative_to(venv)
    assert 0 < report["peak_kernel_mb"] <= report["peak_tree_mb"] < BINDER_MEMORY_MB
