"""Coalesce updates from a busy thread into a few widget pushes per second.

A search emits a generation every few milliseconds on small samples. Pushing each one to the
front end makes other notebook cells wait seconds for the kernel (measured: up to 7.8 s); keeping
only the latest value and pushing at most every `interval` seconds keeps cells responsive
(~70 ms), and `flush()` sends the last value when a run stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_NOTHING = object()


class Throttle(Generic[T]):
    """Calls `push(latest)` at most once per `interval` seconds, never dropping the last value."""

    def __init__(self, push: Callable[[T], None], interval: float = 0.25) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.push = push
        self.interval = interval
        self.pushes = 0
        self._lock = threading.Lock()
        self._push_lock = threading.RLock()  # pushes in order, never two at once
        self._pending: object = _NOTHING
        self._last = -float("inf")
        self._timer: threading.Timer | None = None

    def submit(self, value: T) -> None:
        """Offer a new value: pushed now if the last push is old enough, else on a timer."""
        with self._lock:
            self._pending = value
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self.flush()

    def flush(self) -> None:
        """Push the pending value now, if any (a run's last state must always arrive)."""
        with self._push_lock:
            with self._lock:
                value, self._pending = self._pending, _NOTHING
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                if value is _NOTHING:
                    return
                self._last = time.monotonic()
                self.pushes += 1
            self.push(value)  # type: ignore[arg-type]

    def cancel(self) -> None:
        """Drop the pending value and the timer (the widget is closing)."""
        with self._lock:
            self._pending = _NOTHING
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
