"""A real wheel: built from the checkout, holding the JS bundle and the embedded data, installed
(not editable) into a fresh environment where `gm-lab` runs with no data folder and an empty HOME.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.venvs import bare_env, layered_venv

REPO = Path(__file__).resolve().parents[1]
MAX_WHEEL_BYTES = 10_000_000


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (found,) = out.glob("gm_lab-*.whl")
    return found


@pytest.mark.slow
def test_wheel_holds_bundle_embedded_data_and_lab_settings(wheel: Path) -> None:
    assert wheel.stat().st_size <= MAX_WHEEL_BYTES
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in (
        "gm_lab/widgets/static/tree_editor.js",
        "gm_lab/widgets/static/vega_chart.js",
        "gm_lab/embedded/nats_bench/tss.csv.xz",
        "gm_lab/embedded/images/cifar-10-batches-py.npz",
        "gm_lab/embedded/manifest.json",
        "gm_lab/embedded/PROVENANCE.md",
        "gm_lab/embedded/pass_costs.json",  # the shipped pass costs (gm_lab.expressions.cost)
        "gm_lab-0.1.0.data/data/share/jupyter/lab/settings/overrides.d/gm_lab.json",
    ):
        assert member in names, member
    tops = {name.split("/")[0] for name in names}
    assert tops == {"gm_lab", "gm_lab-0.1.0.dist-info", "gm_lab-0.1.0.data"}, tops
    shipped = zipfile.ZipFile(wheel).read("gm_lab/embedded/nats_bench/tss.csv.xz")
    assert shipped == (REPO / "gm_lab/embedded/nats_bench/tss.csv.xz").read_bytes()


@pytest.mark.slow
def test_installed_wheel_runs_on_a_bare_machine(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = layered_venv(venv)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = bare_env(venv, home)

    def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        out = subprocess.run(
            args, capture_output=True, text=True, env=env, cwd=work, timeout=timeout
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return out

    run(str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel))
    run(str(python), "-m", "pip", "check")  # every declared dependency is there
    where = run(str(python), "-c", "import gm_lab; print(gm_lab.__file__)").stdout.strip()
    assert Path(where).is_relative_to(venv) and "site-packages" in where

    gm_lab = str(venv / "bin" / "gm-lab")
    info = json.loads(run(gm_lab, "data", "info", "--json").stdout)
    parts = {p["part"]: p for p in info["sources"]["parts"]}
    assert parts["tss table"]["origin"] == "embedded default"
    assert parts["cifar10 images"]["origin"] == "embedded default"
    assert Path(parts["tss table"]["path"]).is_relative_to(venv)
    assert info["n_archs"] == 15_625

    small = ["--n", "20", "--heldout-n", "10", "--pop", "10", "--gens", "2"]
    probe = ["--batch-size", "8", "--workers", "0"]
    evolve = run(
        gm_lab, "evolve", "--space", "tss", "--dataset", "cifar10", *small, *probe, "--json"
    )
    result = json.loads(evolve.stdout)
    assert result["best"]["expr"] and math.isfinite(result["best"]["heldout_kendall"])
    assert result["probe"]["cifar10"]["provenance"]["source"] == "cifar10-test-embedded"
    assert result["standin_images"] == {}
    assert "ground truth: NATS-Bench TSS from the embedded default" in evolve.stderr
