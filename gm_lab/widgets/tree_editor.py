"""An expression tree view and editor: draws a proxy expression as a tree and lets people edit it.

The browser never decides what is valid. It *proposes* edits by setting the `proposal` trait
(``{"tree": <JSON form>, "seq": n}`` or ``{"text": "...", "seq": n}``); this class checks them
with the expression language's own reader (`from_json` / `parse`) and either accepts them (sets
`tree`, `text`, clears `error`) or reports why not in `error`, leaving the expression as it was.
So an invalid tree never reaches `expression` or the `on_change` callbacks, and the editor and
the text form can never disagree about what an expression means.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import anywidget
import traitlets
from deap import gp

from gm_lab.export import expression_tree
from gm_lab.expressions import (
    MAX_DEPTH,
    OPS,
    ExpressionError,
    from_json,
    parse,
    proxy_names,
    stat_names,
    to_json,
    to_text,
)
from gm_lab.widgets._assets import bundle
from gm_lab.widgets.guard import GuardedState

Callback = Callable[[gp.PrimitiveTree], Any]
ExpressionLike = str | gp.PrimitiveTree | dict


def _op_entry(op: Any, returns: str) -> dict[str, Any] | None:
    """The palette entry of `op` for results of type `returns`, or None if it never gives one."""
    signatures = [list(sig) for sig in op.signatures() if op.result_type(sig) == returns]
    if not signatures:
        return None
    return {
        "name": op.name,
        "arity": op.arity,
        "args": signatures[0],
        "returns": returns,
        "signatures": signatures,
        "symbol": op.symbol,
        "doc": op.doc,
    }


@lru_cache(maxsize=4)
def _palette_cached(stats: tuple[str, ...], proxies: tuple[str, ...], n_ops: int) -> dict[str, Any]:
    """The palette for these terminals and operators (keyed by them, so a plug-in registered
    after the first editor appears in the next one)."""
    palette: dict[str, Any] = {}
    for code, terminals, kind in (("L", stats, "stat"), ("S", proxies, "proxy")):
        entries = (_op_entry(op, code) for op in OPS)
        palette[code] = {
            "ops": [entry for entry in entries if entry is not None],
            "terminals": [{"name": name, "kind": kind} for name in terminals],
            "constant": code == "S",
        }
    return palette


def build_palette() -> dict[str, Any]:
    """What may stand where a node of type "L" or "S" is: operators returning that type (with
    the argument types they accept), the terminals of that type, and whether a constant may.
    Derived from the primitive set, so the editor offers exactly what the language accepts."""
    cached = _palette_cached(stat_names(), proxy_names(), len(OPS))
    return {code: {**entry, "ops": list(entry["ops"])} for code, entry in cached.items()}


def _coerce(value: ExpressionLike) -> gp.PrimitiveTree:
    """A checked DEAP tree from text, a tree, or the JSON form; ExpressionError if invalid."""
    if isinstance(value, dict):
        return from_json(value)
    return expression_tree(value)


def _read_proposal(proposal: dict[str, Any]) -> gp.PrimitiveTree:
    """The tree a front-end proposal describes; ExpressionError saying what is wrong with it."""
    if "tree" in proposal:
        return from_json(proposal["tree"])
    if "text" in proposal:
        text = proposal["text"]
        if not isinstance(text, str):
            raise ExpressionError(f"proposed text must be a string, got {type(text).__name__}")
        return parse(text)
    raise ExpressionError("a proposal needs a 'tree' or a 'text'")


class ExpressionEditor(GuardedState, anywidget.AnyWidget):
    """A live tree view of one expression; editable unless `readonly`.

    Traits synced with the browser: `tree` (the JSON form), `text` (canonical text), `error`
    (why the last proposal was refused, with its position; "" when it was accepted), `proposal`
    (written by the browser), `seq` (the sequence number of the last proposal handled, so the
    browser knows its edit was answered even when nothing changed), `palette` and `readonly`.
    """

    _esm = bundle("tree_editor.js")

    tree = traitlets.Dict().tag(sync=True)
    text = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    proposal = traitlets.Dict().tag(sync=True)
    seq = traitlets.Int(0).tag(sync=True)
    palette = traitlets.Dict().tag(sync=True)
    readonly = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self, expr: ExpressionLike = "mean(snip_l)", *, readonly: bool = False, **kwargs: Any
    ) -> None:
        tree = _coerce(expr)
        self._tree = tree
        self._callbacks: list[Callback] = []
        super().__init__(
            tree=to_json(tree),
            text=to_text(tree),
            palette=build_palette(),
            readonly=readonly,
            **kwargs,
        )

    @property
    def expression(self) -> gp.PrimitiveTree:
        """The current (always valid) expression; a copy, so changing it changes nothing here."""
        return gp.PrimitiveTree(list(self._tree))

    def set_expression(self, expr: ExpressionLike) -> None:
        """Show `expr` (text, tree or JSON form). Raises ExpressionError if it is invalid: a
        Python caller should hear about its mistake rather than see it only in the widget."""
        self._accept(_coerce(expr))

    def on_change(self, callback: Callback) -> Callable[[], None]:
        """Call `callback(tree)` whenever an edit (from the browser or Python) changes the
        expression; returns a function that unsubscribes it."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    @traitlets.observe("proposal")
    def _on_proposal(self, change: dict[str, Any]) -> None:
        proposal = change["new"]
        if not proposal:
            return
        seq = proposal.get("seq")
        seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else self.seq + 1
        if self.readonly:
            self._refuse("the editor is read-only", seq)
            return
        try:
            tree = _read_proposal(proposal)
        except ExpressionError as exc:
            self._refuse(str(exc), seq)
            return
        except (RecursionError, TypeError, ValueError) as exc:  # never raise into the kernel
            self._refuse(f"the proposal cannot be read ({type(exc).__name__})", seq)
            return
        self._accept(tree, seq)

    def refuse_state(self, name: str, value: Any, reason: str) -> None:
        """An over-deep proposal is refused like any invalid one: the browser gets the reason."""
        if name != "proposal":
            return
        seq = value.get("seq") if isinstance(value, dict) else None
        seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else self.seq + 1
        self._refuse(f"the proposed tree is {reason} (expressions: {MAX_DEPTH} levels)", seq)

    def _refuse(self, message: str, seq: int) -> None:
        """Report a refused proposal; the expression stays as it was."""
        with self.hold_sync():
            self.error = message
            self.seq = seq

    def _accept(self, tree: gp.PrimitiveTree, seq: int | None = None) -> None:
        """Make `tree` (already checked) the expression, in one message to the browser."""
        data = to_json(tree)
        changed = data != self.tree
        with self.hold_sync():
            self._tree = tree
            self.tree = data
            self.text = to_text(tree)
            self.error = ""
            if seq is not None:
                self.seq = seq
        if changed:
            for callback in list(self._callbacks):
                callback(self.expression)
