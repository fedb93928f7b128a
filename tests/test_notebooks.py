"""Every notebook in notebooks/ runs top to bottom in a real kernel on a small sample, and its key
outputs are asserted by cells appended here (the notebooks stay clean for users).

Notebooks read their sizes from GM_LAB_NB_* environment variables with user-sized defaults, so
CI runs them small: GM_LAB_NB_N (architectures per sample), GM_LAB_NB_GENS, GM_LAB_NB_POP,
GM_LAB_NB_BATCH (probe batch size).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {"GM_LAB_NB_N": "40", "GM_LAB_NB_GENS": "4", "GM_LAB_NB_POP": "20", "GM_LAB_NB_BATCH": "8"}

# notebook name -> code appended after its last cell: assertions on the kernel's state
CHECKS: dict[str, str] = {}


def run_notebook(path: Path, checks: str, tmp_path: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Execute `path` plus a `checks` cell in a fresh kernel (cwd: the notebooks folder);
    returns the executed notebook (outputs included)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(checks))
    env_before = dict(os.environ)
    os.environ.update(SMALL)
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
            store_widget_state=False,
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    nbformat.write(nb, tmp_path / path.name)  # executed copy, for a look after a failure
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    """All text outputs of an executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_every_notebook_has_checks() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names, "no notebooks found"
    assert sorted(CHECKS) == names


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs_and_shows_what_it_promises(name: str, tmp_path: Path) -> None:
    run_notebook(NOTEBOOKS / name, CHECKS[name], tmp_path)
