"""PROBE_VERSION is derived from the code that computes probe numbers, not bumped by hand."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gm_lab.probe import record
from gm_lab.probe.record import PROBE_VERSION, ProbeConfig, probe_source_files, probe_version

PACKAGE = Path(record.__file__).resolve().parents[1]


@pytest.fixture
def sources(tmp_path: Path) -> list[Path]:
    """Copies of three real probe modules."""
    copies = []
    for name in ("probe/backward_split.py", "probe/pooling.py", "probe/torch_internals.py"):
        copy = tmp_path / name.replace("/", "_")
        shutil.copy(PACKAGE / name, copy)
        copies.append(copy)
    return copies


def test_the_version_is_stable_and_is_what_configs_carry() -> None:
    assert PROBE_VERSION == record.current_probe_version() == probe_version()
    assert len(PROBE_VERSION) == 12 and int(PROBE_VERSION, 16) >= 0
    assert ProbeConfig().version == PROBE_VERSION


def test_it_covers_the_modules_that_compute_probe_numbers() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in probe_source_files()}
    for name in ("probe/probe.py", "probe/convolution.py", "probe/torch_internals.py"):
        assert name in names
    assert "networks/tss.py" in names and "inputs/minibatch.py" in names
    assert {"proxies/snip.py", "proxies/grasp.py", "statistics.py"} <= names
    # standalone proxies are versioned apart: adding or editing one keeps every record valid
    assert "proxies/sed.py" not in names and "proxies/swap.py" not in names
    assert "probe/record.py" not in names and "probe/cache.py" not in names


def test_comments_docstrings_and_layout_do_not_change_it(sources: list[Path]) -> None:
    before = probe_version(sources)
    target = sources[0]
    lines = target.read_text().splitlines(keepends=True)
    undocumented = next(
        node
        for node in ast.walk(ast.parse("".join(lines)))
        if isinstance(node, ast.FunctionDef) and ast.get_docstring(node) is None
    )
    first = undocumented.body[0]
    pad = " " * first.col_offset
    lines.insert(first.lineno - 1, f'{pad}"""A new docstring."""  # and a comment\n')
    text = "# a comment first\n" + "".join(lines) + "\n\n# trailing comment\n"
    text = text.replace('"""', '"""Reworded. ', 1)  # the module docstring
    text = text.replace("\n\n\ndef ", "\n\n\n\n\ndef ")  # more blank lines
    assert ast.get_docstring(ast.parse(text)).startswith("Reworded")
    target.write_text(text)
    assert probe_version(sources) == before
    target.write_text(text.replace("from __future__ import annotations\n", "", 1))
    assert probe_version(sources) != before  # a real statement, even one changing no number


def test_a_change_of_code_changes_it(sources: list[Path]) -> None:
    before = probe_version(sources)
    target = sources[1]
    text = target.read_text()
    versions = {before}
    for code in ("_SCALE = 1.0", "_SCALE = 2.0", "_SCALE = 2.0 * _SCALE"):
        target.write_text(f"{text}\n{code}\n")
        versions.add(probe_version(sources))
    assert len(versions) == 4
    target.write_text(text)
    assert probe_version(sources) == before
    assert probe_version(reversed(sources)) == before  # the files' order does not matter


def test_a_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "probe").mkdir()
    with pytest.raises(FileNotFoundError, match=r"probe\.py is missing: reinstall gm_lab"):
        probe_source_files(tmp_path)


def test_reading_it_needs_no_torch() -> None:
    code = (
        "import sys, gm_lab.probe.record as r; v = r.PROBE_VERSION; "
        "assert 'torch' not in sys.modules; print(v)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == PROBE_VERSION
