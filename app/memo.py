"""Memos of the app's data hub, and the context its reads run in (no Panel)."""

from __future__ import annotations

import contextvars
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable


def outside_session(fn: Callable) -> Callable:
    """Run the method in an empty ``contextvars`` context (the data reads of the hub).

    zarr does its I/O on an event loop of its own, created by the first read, and asyncio
    hands that loop's callbacks a copy of the *caller's* context variables.  Panel keeps
    the session's document in one, so the session that happened to read first stayed in
    memory, with its document, panes and maps, for the life of the process.  The hub's
    reads need nothing from the session's context.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return contextvars.Context().run(fn, *args, **kwargs)
    return wrapper


class LRU:
    """A small thread-safe LRU memo."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.maxsize:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        return len(self._d)
