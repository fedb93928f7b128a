"""`gm-lab lab`: open JupyterLab on gm_lab's notebooks (quickstart, lesson, hand-editing,
reproduction)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from gm_lab.errors import DataMissingError

SOURCE_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"  # a source checkout
# JupyterLab without news and update checks (a lesson offline or on Binder must not ask to fetch
# news); the installed settings override (gm_lab/widgets/lab_settings.json) also hides the prompt.
QUIET_LAB_ARGS: tuple[str, ...] = (
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
)


def register(commands: argparse._SubParsersAction) -> None:
    lab = commands.add_parser(
        "lab",
        help="open JupyterLab on the notebooks",
        description=(
            "Start JupyterLab in the notebooks folder (./notebooks, else the one of the gm_lab "
            "checkout this package runs from). Extra arguments go to `jupyter lab`."
        ),
    )
    lab.add_argument("--notebooks", type=Path, help="folder to open (default: see above)")
    lab.add_argument("--dry-run", action="store_true", help="print the command, start nothing")
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="passed to jupyter lab")
    lab.set_defaults(run=run_lab)


def find_notebooks(explicit: Path | None = None) -> Path:
    """The notebooks folder to open; DataMissingError naming where it looked."""
    candidates = [explicit] if explicit else [Path.cwd() / "notebooks", SOURCE_NOTEBOOKS]
    for folder in candidates:
        if folder is not None and folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder.resolve()
    raise DataMissingError(
        "gm_lab notebooks",
        [str(c) for c in candidates if c is not None],
        "run from a gm_lab checkout (git clone ...; the notebooks/ folder) or pass --notebooks DIR",
    )


def run_lab(args: argparse.Namespace) -> int:
    folder = find_notebooks(args.notebooks)
    extra = [a for a in args.jupyter_args if a != "--"]
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--notebook-dir={folder}",
        *QUIET_LAB_ARGS,
        *extra,
    ]
    if args.dry_run:
        print(shlex.join(command))
        return 0
    os.execv(sys.executable, command)  # JupyterLab takes over this process (Ctrl-C stops it)
    return 0  # not reached
