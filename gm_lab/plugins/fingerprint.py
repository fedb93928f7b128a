"""Versions derived from code: a digest of what the code does, not of how it is written.

Why the AST: a cached value must be recomputed when the code computing it changes, and only
then. Hashing the file bytes would invalidate every cache on a reformat or a reworded comment;
`ast.dump` of the parsed module with docstrings removed changes only when the code does.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def code_digest(source: str) -> str:
    """SHA-256 (hex) of `source`'s syntax tree without docstrings, comments or layout."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def files_digest(paths: Iterable[Path], length: int = 12) -> str:
    """One short digest over the code of several source files (order-independent)."""
    parts = sorted(code_digest(Path(p).read_text(encoding="utf-8")) for p in paths)
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:length]


def function_version(fn: Callable[..., Any], length: int = 12) -> str:
    """A version for the plug-in `fn`: the code of its whole module when it has a source file
    (helpers it calls live there too), else of the function itself (a notebook cell), else "1"."""
    module = inspect.getmodule(fn)
    try:
        source = inspect.getsource(module) if module is not None else inspect.getsource(fn)
    except (OSError, TypeError):
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            return "1"
    return code_digest(source)[:length]
