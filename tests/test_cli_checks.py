"""Unusable paths and options are refused before any work, in one line; a finished result is never
lost to a write failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gm_lab.cli.evolve import save_result
from gm_lab.evolution.config import SearchConfig, SearchConfigError
from gm_lab.evolution.result import SearchResult

UNWRITABLE = Path("/proc/gm_lab-cannot-be-here")  # not writable, even for root


def gm_lab(*args: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gm_lab.cli", *args]
    full_env = {**os.environ, **env}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=full_env)


def refused(out: subprocess.CompletedProcess, message: str) -> None:
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 2, out.stderr
    assert message in last and "Traceback" not in out.stderr, out.stderr
    assert "probe tss" not in out.stderr  # refused before any probing


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def test_cache_that_is_a_file_or_unwritable(a_file: Path) -> None:
    refused(gm_lab("score", "naswot", GM_LAB_CACHE=str(a_file)), "is a file, not a folder")
    refused(gm_lab("probe", "--n", "20", GM_LAB_CACHE=str(UNWRITABLE)), "cannot be written to")
    small = ["--n", "20", "--gens", "1", "--pop", "4"]
    refused(gm_lab("evolve", *small, GM_LAB_CACHE=str(a_file)), "$GM_LAB_CACHE")


def test_evolve_output_paths_are_checked_before_probing(a_file: Path, tmp_path: Path) -> None:
    small = ["--n", "20", "--gens", "1", "--pop", "4"]
    refused(gm_lab("evolve", *small, "--save", str(tmp_path)), "is a folder; give a file name")
    refused(gm_lab("evolve", *small, "--save", str(a_file / "x.json")), "--save")
    refused(gm_lab("evolve", *small, "--checkpoint", str(a_file)), "is a file, not a folder")
    refused(gm_lab("evolve", "--resume", str(tmp_path / "none")), "is not a checkpoint folder")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "naswot", "--scheduler", "not a url"], "neither 'local' nor a scheduler"),
        (["evolve", "--scheduler", "http//x"], "neither 'local' nor a scheduler"),
        (["evolve", "--size-penalty", "inf"], "must be a finite number >= 0"),
        (["evolve", "--size-penalty", "nan"], "must be a finite number >= 0"),
        (["evolve", "--size-penalty", "-1"], "must be a finite number >= 0"),
    ],
)
def test_bad_option_values_are_one_line_errors(args: list[str], message: str) -> None:
    refused(gm_lab(*args), message)


def test_scheduler_addresses_that_are_fine() -> None:
    from gm_lab.cli.checks import scheduler_address

    for text in ("local", "tcp://10.0.0.5:8786", "scheduler-host:8786", "tls://[::1]:8786"):
        assert scheduler_address(text) == text


def test_non_finite_penalty_is_refused_by_the_engine_too() -> None:
    with pytest.raises(SearchConfigError, match="finite"):
        SearchConfig(size_penalty=float("inf"))
    with pytest.raises(SearchConfigError, match="n_heldout=2"):
        SearchConfig(n_heldout=2)


def test_a_failed_result_write_keeps_the_result_and_says_where(capsys, tmp_path: Path) -> None:
    result = SearchResult(SearchConfig(), 0, [], [])
    good = tmp_path / "ok.json"
    assert save_result(result, None, good) == 0 and good.is_file()
    assert save_result(result, None, UNWRITABLE / "r.json") == 1
    err = capsys.readouterr().err
    assert f"could not write the result to {UNWRITABLE / 'r.json'}" in err
    assert "it is printed above" in err
