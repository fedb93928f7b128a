"""The one error the expression language raises: what is wrong, and exactly where.

Expressions come from people typing in a notebook or a tree editor, so an error must point at
the offending spot (a column in the text, or a path in the JSON tree) and say why, instead of
surfacing a KeyError or a RecursionError from deep inside the parser.
"""

from __future__ import annotations

from gm_lab.errors import GmLabError

_WINDOW = 60  # characters of context shown either side of the caret


class ExpressionError(GmLabError, ValueError):
    """An expression that cannot be parsed, typed, bounded or evaluated.

    Attributes: `reason` (one sentence), `text` (the input, when it was text), `position`
    (0-based character offset into `text`, or None), `column` (1-based, or None) and `path`
    (where in a JSON tree, e.g. ``$.args[1]``, or None).
    """

    def __init__(
        self,
        reason: str,
        *,
        text: str | None = None,
        position: int | None = None,
        path: str | None = None,
    ) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        self.path = path
        super().__init__(self._message())

    @property
    def column(self) -> int | None:
        return None if self.position is None else self.position + 1

    def _message(self) -> str:
        if self.path is not None:
            return f"{self.reason} (at {self.path})"
        if self.text is None or self.position is None:
            return self.reason
        line, caret = caret_lines(self.text, self.position)
        return f"{self.reason} (column {self.position + 1})\n  {line}\n  {caret}"


def caret_lines(text: str, position: int) -> tuple[str, str]:
    """The text around `position` on one line and a line with a caret under that position.

    Newlines, tabs and other non-printable characters are shown as spaces or '?', so the caret
    stays aligned; long inputs are cut to a window around the position, marked with '...'.
    """
    position = max(0, min(position, len(text)))
    start = max(0, position - _WINDOW)
    stop = min(len(text), position + _WINDOW)
    shown = "".join(_printable(ch) for ch in text[start:stop])
    prefix = "..." if start > 0 else ""
    suffix = "..." if stop < len(text) else ""
    return prefix + shown + suffix, " " * (len(prefix) + position - start) + "^"


def _printable(ch: str) -> str:
    if ch in "\t\n\r\v\f":
        return " "
    return ch if ch.isprintable() else "?"
