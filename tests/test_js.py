"""The front end's own unit tests (vitest: tree logic, tree editor and chart render code), run
from here so README's one test command covers them too."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[1] / "js"


@pytest.mark.slow
def test_front_end_unit_tests_pass() -> None:
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed to build and test the widgets' front end"
    if not (JS / "node_modules").is_dir():
        subprocess.run([npm, "ci"], cwd=JS, check=True, capture_output=True, timeout=600)
    run = subprocess.run(
        [npm, "test", "--", "--reporter=default", "--no-color"],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    passed = re.search(r"Tests\s+(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 40, output[-2000:]
