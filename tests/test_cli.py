"""The `gm-lab` command as users run it: a real subprocess on the real data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def gm_lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gm_lab.cli", *args], capture_output=True, text=True, timeout=120
    )


def _subcommands(parser) -> dict:
    """A parser's sub-command parsers by name (empty when it has none)."""
    import argparse

    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def _commands() -> dict[str, list[str]]:
    """Every command and sub-command of `gm-lab`, from its parser (so a new one is covered at
    once), each with its own sub-commands."""
    from gm_lab.cli import build_parser

    out: dict[str, list[str]] = {"": list(_subcommands(build_parser()))}
    for name, parser in _subcommands(build_parser()).items():
        out[name] = list(_subcommands(parser))
        out.update({f"{name} {sub}": [] for sub in out[name]})
    return out


COMMANDS = _commands()


def test_help_explains_every_command():
    out = gm_lab("--help")  # the real entry point, once
    assert out.returncode == 0, out.stderr
    for name in COMMANDS[""]:  # listed with a line saying what it does
        assert re.search(rf"^ +{name} +\w", out.stdout, re.MULTILINE), name


@pytest.mark.parametrize("command", [c for c in COMMANDS if c])
def test_command_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`gm-lab COMMAND --help` (in this process: same parser, no seconds of imports each)."""
    from gm_lab.cli import main

    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gm-lab {command} ") and "options:" in out
    for sub in COMMANDS[command]:
        assert re.search(rf"^ +{sub} +\w", out, re.MULTILINE), sub


def test_data_info_json():
    out = gm_lab("data", "info", "--space", "tss", "--dataset", "cifar10", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["n_archs"] == 15_625
    assert info["best"]["index"] == 6111
    assert info["best"]["test_acc"] == pytest.approx(94.3733, abs=1e-4)
    assert info["best"]["arch"].startswith("|nor_conv_3x3~0|+")


def test_data_info_text_for_cifar100():
    out = gm_lab("data", "info", "--dataset", "cifar100")
    assert out.returncode == 0, out.stderr
    assert "#9930" in out.stdout and "73.51" in out.stdout and "15,625" in out.stdout


def test_data_import_writes_equal_table(tmp_path, official_sample, data_root):
    out_csv = tmp_path / "tss.csv"
    folder = official_sample / "NATS-tss-v1_0-3ffb9-simple"
    out = gm_lab("data", "import", str(folder), "--out", str(out_csv))
    assert out.returncode == 0, out.stderr
    assert "3 with results" in out.stdout
    imported = pd.read_csv(out_csv).set_index("index")
    reference = pd.read_csv(data_root / "nats_bench" / "tss.csv").set_index("index")
    for column in ("cifar10_test", "cifar100_test", "imagenet16_test", "params_imagenet16"):
        assert imported.loc[[0, 11, 284], column].tolist() == pytest.approx(
            reference.loc[[0, 11, 284], column].tolist(), abs=1e-4
        )
    assert imported["cifar10_test"].isna().sum() == 15_625 - 3


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GM_LAB_DATA", str(tmp_path))  # no SSS anywhere: no embedded SSS table
    out = gm_lab("data", "info", "--space", "sss")
    assert out.returncode == 2
    assert "not found" in out.stderr and str(tmp_path) in out.stderr
    assert "Traceback" not in out.stderr


def test_lab_opens_jupyterlab_on_the_notebooks(tmp_path) -> None:
    from gm_lab.cli.lab import SOURCE_NOTEBOOKS

    run = subprocess.run(  # from a folder without ./notebooks: the checkout's folder is used
        [sys.executable, "-m", "gm_lab.cli", "lab", "--dry-run", "--", "--port=8899"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    command = run.stdout.split()
    assert command[1:4] == ["-m", "jupyter", "lab"]
    assert f"--notebook-dir={SOURCE_NOTEBOOKS}" in command
    assert "--LabApp.news_url=None" in command  # no news pop-up, no update check
    assert "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate" in command
    assert command[-1] == "--port=8899"


def test_installed_lab_settings_turn_off_news_and_update_checks() -> None:
    """pip install puts gm_lab's JupyterLab settings where JupyterLab merges overrides."""
    installed = Path(sys.prefix) / "share/jupyter/lab/settings/overrides.d/gm_lab.json"
    settings = json.loads(installed.read_text())["@jupyterlab/apputils-extension:notification"]
    assert settings == {"fetchNews": "false", "checkForUpdates": False}


def test_lab_says_where_it_looked_for_notebooks(tmp_path) -> None:
    run = gm_lab("lab", "--dry-run", "--notebooks", str(tmp_path / "nowhere"))
    assert run.returncode == 2
    assert "gm_lab notebooks not found" in run.stderr and "nowhere" in run.stderr
