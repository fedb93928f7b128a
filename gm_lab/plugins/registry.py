"""A named registry of plug-ins, filled by decorators, by user code and by Python entry points.

Why one generic class: proxies, per-layer statistics, GP operators and search spaces are all
"a name, its metadata, and the code behind it". Each kind gets one `Registry`; the built-ins
register themselves when their module is imported, a user registers from a notebook with the
same decorator, and an installed package registers through the entry-point group named by the
registry (the ecosystem's plug-in convention: ``[project.entry-points."gm_lab.proxies"]``).
Layers above (the expression language, the widgets) subscribe, so a plug-in registered after
they were imported still becomes a GP terminal or a menu item.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

from gm_lab.errors import GmLabError


class PluginError(GmLabError, ValueError):
    """A plug-in cannot be registered or loaded (duplicate name, bad metadata, failed import)."""


class Named(Protocol):
    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=Named)


class Registry(Generic[S]):
    """Specs of one kind of plug-in by name, in registration order.

    `builtins`: the module (or package) whose import registers gm_lab's own plug-ins of this
    kind; `entry_point_group`: the group whose entry points are imported next (each names a
    module or object whose import registers its plug-ins). Both happen the first time the
    registry is read, so importing the registry itself stays cheap and torch-free.
    """

    def __init__(
        self, kind: str, *, builtins: str | None = None, entry_point_group: str | None = None
    ) -> None:
        self.kind = kind
        self.builtins = builtins
        self.entry_point_group = entry_point_group
        self._specs: dict[str, S] = {}
        self._listeners: list[Callable[[S], None]] = []
        self._lock = threading.RLock()
        self._loaded = False
        self.load_errors: dict[str, str] = {}

    def register(self, spec: S, *, replace: bool = False) -> S:
        """Add `spec`; a second registration of a name is an error unless `replace` is set
        (for re-running a notebook cell that defines a plug-in)."""
        name = spec.name
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(f"{self.kind} name {name!r} must be a Python identifier")
        with self._lock:
            if name in self._specs and not replace:
                raise PluginError(
                    f"{self.kind} {name!r} is registered twice; pass replace=True to redefine it"
                )
            self._specs[name] = spec
            listeners = list(self._listeners)
        for listener in listeners:
            listener(spec)
        return spec

    def subscribe(self, listener: Callable[[S], None]) -> None:
        """Call `listener(spec)` for every spec registered from now on (and none before)."""
        with self._lock:
            self._listeners.append(listener)

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
        if self.builtins:
            importlib.import_module(self.builtins)
        if not self.entry_point_group:
            return
        for entry in importlib.metadata.entry_points(group=self.entry_point_group):
            try:
                entry.load()  # importing it registers its plug-ins
            except Exception as exc:  # a broken plug-in must not break gm_lab
                why = f"{type(exc).__name__}: {exc}"
                self.load_errors[entry.name] = why
                warnings.warn(
                    f"{self.kind} plug-in {entry.name!r} ({entry.value}) failed to load: {why}",
                    RuntimeWarning,
                    stacklevel=3,
                )

    def __getitem__(self, name: str) -> S:
        self._load_entry_points()
        try:
            return self._specs[name]
        except KeyError:
            raise PluginError(f"unknown {self.kind} {name!r}; known: {', '.join(self)}") from None

    def get(self, name: str) -> S | None:
        self._load_entry_points()
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        self._load_entry_points()
        return iter(list(self._specs))

    def __len__(self) -> int:
        self._load_entry_points()
        return len(self._specs)

    def names(self) -> tuple[str, ...]:
        return tuple(self)

    def specs(self) -> tuple[S, ...]:
        self._load_entry_points()
        return tuple(self._specs.values())

    def unregister(self, name: str) -> None:
        """Remove `name` (tests, and notebooks undoing an experiment)."""
        with self._lock:
            self._specs.pop(name, None)
