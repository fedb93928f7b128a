"""Where the widgets' JavaScript lives: esbuild bundles of js/src in gm_lab/widgets/static.

`pip install` builds them (hatch-jupyter-builder runs `npm run build` in js/); a wheel or sdist
carries them, so installing one needs no node. During development: `npm --prefix js run build`.
"""

from __future__ import annotations

from pathlib import Path

from gm_lab.errors import GmLabError

STATIC = Path(__file__).parent / "static"


class MissingBundleError(GmLabError, FileNotFoundError):
    """A widget's JavaScript bundle was not built."""


def bundle(name: str) -> Path:
    """The path of bundle `name` (e.g. "tree_editor.js"), for an anywidget's `_esm`."""
    path = STATIC / name
    if not path.is_file():
        raise MissingBundleError(
            f"the widget bundle {path} is missing: build it with `npm --prefix js install && "
            "npm --prefix js run build` (pip install does this when npm is available)"
        )
    return path
