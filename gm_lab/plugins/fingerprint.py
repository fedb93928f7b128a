"""Versions derived from code: a digest of what the code does, not of how it is written.

Why the syntax tree, not the bytes: a cached value must be recomputed when the code computing
it changes, and only then. Each source is parsed (never imported, so this stays torch-free) and
reduced to its syntax tree without docstrings or other bare string statements; comments and
layout never reach the tree. The tree is written out by `_canonical`, not `ast.dump`, whose text
differs between Python versions for the same code (3.12 added empty `type_params`, 3.13 omits
empty fields), so a Python upgrade does not throw caches away. Any change of code, even one
that cannot change a number (a renamed local), gives a new version: a needless recomputation
is cheap next to a stale cache.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def code_digest(source: str, filename: str = "<source>") -> str:
    """SHA-256 (hex) of `source`'s syntax tree without docstrings, comments or layout."""
    tree = ast.parse(textwrap.dedent(source), filename)
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list):
                setattr(node, name, [s for s in body if not _is_bare_string(s)])
    return hashlib.sha256(_canonical(tree).encode()).hexdigest()


def files_digest(paths: Iterable[Path | str], length: int = 12) -> str:
    """One short digest over the code of several source files. The files' digests are sorted,
    so their order, and moving code between them as whole modules, does not change it."""
    digests = sorted(code_digest(Path(p).read_text(encoding="utf-8"), str(p)) for p in paths)
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:length]


def function_version(fn: Callable[..., Any], length: int = 12) -> str:
    """A version for the plug-in `fn`: the code of its whole module when it has a source file
    (helpers it calls live there too), else of the function itself (a notebook cell), else "1"."""
    module = inspect.getmodule(fn)
    file = getattr(module, "__file__", None)
    if file and file.endswith(".py"):
        try:
            return _file_digest(file, Path(file).stat().st_mtime_ns)[:length]
        except (OSError, SyntaxError):
            pass
    try:
        return code_digest(inspect.getsource(fn))[:length]
    except (OSError, TypeError, SyntaxError):
        return "1"


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, _mtime_ns: int) -> str:
    """`code_digest` of a source file, once per file and modification time (a module's 40
    statistics share it)."""
    return code_digest(Path(path).read_text(encoding="utf-8"), path)


def _is_bare_string(stmt: object) -> bool:
    """A docstring, or any other string statement (no effect on what the code computes)."""
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _canonical(node: object) -> str:
    """The tree as text: node types and their non-empty fields, no positions."""
    if isinstance(node, ast.AST):
        fields = (
            f"{name}={_canonical(value)}"
            for name in node._fields
            if (value := getattr(node, name, None)) is not None and value != []
        )
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(_canonical(item) for item in node)}]"
    return repr(node)
