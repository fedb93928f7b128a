"""Browser input checked before ipywidgets walks it: nothing a browser sends raises in the kernel.

ipywidgets walks every value a browser sends recursively (to split out binary buffers and to echo
the state back). A value nested deeper than Python's recursion limit -- a tree of some hundreds of
nodes sent by a buggy or hostile front end -- raises RecursionError inside the comm handler, where
nobody sees it and the browser waits for an answer forever. `GuardedState` measures the nesting
of each incoming value without recursion first, and hands a refused one to `refuse_state`, which
each widget shows in its own way.
"""

from __future__ import annotations

from typing import Any

MAX_NESTING = 200  # containers inside containers; an expression tree needs 2 per level


def nesting_depth(value: Any, stop_at: int) -> int:
    """How deeply lists and dicts nest in `value` (without recursion), counting up to `stop_at`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list | tuple):
            continue
        deepest = max(deepest, depth)
        if deepest > stop_at:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return deepest


class GuardedState:
    """Mixin for widgets (before `anywidget.AnyWidget` in the bases): refuses over-deep state."""

    max_nesting: int = MAX_NESTING

    def set_state(self, sync_data: dict[str, Any]) -> None:
        accepted = {}
        for name, value in sync_data.items():
            depth = nesting_depth(value, self.max_nesting)
            if depth > self.max_nesting:
                self.refuse_state(name, value, f"nested more than {self.max_nesting} levels deep")
            else:
                accepted[name] = value
        if accepted:
            super().set_state(accepted)  # type: ignore[misc]

    def refuse_state(self, name: str, value: Any, reason: str) -> None:
        """Say why a value from the browser was not taken (widgets override it to show it)."""
        self.refused = f"{name}: {reason}"
