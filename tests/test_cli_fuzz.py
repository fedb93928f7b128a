"""Every option of every command, fed a bad value, gives one error line (no traceback) and exit
!= 0 before any work. The cases come from the argparse definitions, so a new option is covered
automatically (and the test fails until it has a bad value below)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gm_lab.cli import build_parser

NOT_HERE = "/proc/gm-lab-no-such-place/x"  # cannot exist, cannot be created (even by root)
CLOSED = "http://127.0.0.1:9/archive.tar.gz"  # nothing listens: no download ever starts

# the least a command needs to get past argparse; each case then spoils one option
BASE: dict[str, list[str]] = {
    "data info": [],
    "data import": ["{official_tss}"],
    "data download": ["cifar10", "--url", CLOSED],
    "data pack": ["{data_root}"],
    "probe": [],
    "score": ["naswot"],
    "evolve": [],
    "lab": ["--dry-run"],
    "predict": [],
    "rerun": ["{result}"],
    "nas": ["--proxy", "params", "--n", "20", "--runs", "2", "--baselines", "random"],
    "costs": [],
}
# bad values by argparse type name; then by option for untyped ones
BY_TYPE = {
    "int": "1.5x",
    "_positive": "0",
    "_non_negative": "-3",
    "_sample_size": "2",
    "finite_non_negative": "inf",
    "normalise_dataset": "mnist",
    "_datasets": "cifar10,mnist",
    "_names": "no_such_proxy",  # evolve --standalone
    "scheduler_address": "not a url",
    "strip": "log(",
    "_positive_float": "0",  # nas --max-latency-ms / --max-energy-mj
    "_baselines": "random,no_such_baseline",  # nas --baselines
}
BY_OPTION = {
    ("data download", "name"): "mnist",
    ("data download", "--url"): "no-scheme-here",
    ("data download", "--hash"): "md5:xyz",
    ("data import", "path"): NOT_HERE,
    ("data pack", "source"): NOT_HERE,
    ("evolve", "--resume"): NOT_HERE,
    ("costs", "expressions"): "naswot +",
    ("lab", "--notebooks"): NOT_HERE,
}
SKIP = {("lab", "jupyter_args")}  # handed to JupyterLab as they are


def commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    top = build_parser()
    for name, parser in _subparsers(top).items():
        nested = _subparsers(parser)
        if nested:
            yield from ((f"{name} {sub}", p) for sub, p in nested.items())
        else:
            yield name, parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def cases() -> list[tuple[str, str, str]]:
    """(command, option, bad value) for every option that takes a value."""
    out = []
    for command, parser in commands():
        for action in parser._actions:
            if action.nargs == 0 or isinstance(action, argparse._HelpAction):
                continue
            option = action.option_strings[0] if action.option_strings else action.dest
            if (command, option) in SKIP:
                continue
            type_name = getattr(action.type, "__name__", None)
            if action.choices is not None:
                bad = "zz-not-a-choice"
            elif (command, option) in BY_OPTION:
                bad = BY_OPTION[(command, option)]
            elif type_name == "Path":
                bad = NOT_HERE  # an output path that cannot be written
            else:
                bad = BY_TYPE[type_name]  # KeyError: a new option needs its bad value here
            out.append((command, option, bad))
    return out


def argv(command: str, option: str, bad: str, fill: dict[str, str]) -> list[str]:
    base = [part.format(**fill) for part in BASE[command]]
    if option.startswith("--"):
        if option in base:  # replace the base's own value (data download --url)
            at = base.index(option)
            base[at + 1] = bad
            return [*command.split(), *base]
        return [*command.split(), *base, option, bad]
    positional = [p for p in base if not p.startswith("-")]
    rest = base[len(positional) :] if base[: len(positional)] == positional else base
    return [*command.split(), bad, *(p for p in rest if p not in positional[:1])]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gm_lab.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.slow
def test_every_option_refuses_a_bad_value_in_one_line(tmp_path: Path):
    # the bad value is refused before the good ones are read: empty folders stand in for them
    fill = {
        "official_tss": str(tmp_path / "NATS-tss-v1_0-3ffb9-simple"),
        "data_root": str(tmp_path / "data"),
    }
    for folder in fill.values():
        Path(folder).mkdir()
    fill["result"] = str(tmp_path / "result.json")
    Path(fill["result"]).write_text("{}")
    env = dict(os.environ)
    todo = cases()
    assert len(todo) >= 50  # every command's options, not a handful
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda c: run(argv(*c, fill), env), todo))
    failures = []
    for (command, option, bad), out in zip(todo, outs, strict=True):
        lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
        ok = (  # one error line (a missing file's message goes on to list where it looked)
            out.returncode != 0
            and "Traceback" not in out.stderr
            and sum("error:" in line for line in lines) == 1
        )
        if not ok:
            failures.append(f"{command} {option} {bad!r}: rc={out.returncode} {out.stderr[-300:]}")
    assert not failures, "\n".join(failures)
