"""Giving the memory of closed sessions back to the operating system.

A closed session is a large graph of reference cycles (Bokeh document, Panel panes,
HoloViews maps and plots, param watchers).  Only the cyclic garbage collector frees it,
and it takes **several** full collections in a row: the first frees the server session
and the document, whose finalizers and weak-reference callbacks (HoloViews' option store,
Panel's per-document registries) only then drop the last references to the session's
maps, which the next collection frees.  Python runs a full collection only after enough
new objects have survived, so an idle server keeps its closed sessions for minutes, and
Panel's own debounced ``gc.collect()`` after a session ends is one pass, not enough.

:func:`schedule_release` (called when a session ends) waits until no session has closed
for ``delay`` seconds, then collects (as :func:`release_memory` does) until a pass finds
almost nothing, and asks the C allocator to return its free pages (``malloc_trim``).
Only whole free pages go back: with Python's own small-object allocator (the default)
the closed sessions' objects are spread over 1 MiB arenas that one survivor keeps, and
almost nothing is returned.  ``make serve`` therefore starts the server with
``PYTHONMALLOC=malloc`` (every object from the C allocator, whose free pages
``malloc_trim`` can return wherever they are); see :data:`SERVE_ENV`.

The collections run on the server's event loop, one per turn of the loop, and hold the
interpreter while each runs: other open pages pause that long, a few times per burst of
closing sessions.  The objects of the imports are frozen out of collections when the
server has loaded (``app/app_hooks.py``), and whatever survives a release with no session
open (caches, lazily imported modules) is frozen then: the collections scan the
sessions' objects and little else.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import time
import weakref

log = logging.getLogger(__name__)

#: the environment ``make serve`` and the app benchmarks serve the app with
SERVE_ENV = {"PYTHONMALLOC": "malloc"}
#: seconds without a newly closed session before the memory is released
RELEASE_DELAY_S = 3.0
#: at most this many full collections in a row (three free a closed session here)
MAX_PASSES = 6
#: seconds between two collections of a scheduled release (other callbacks run between)
PASS_GAP_S = 0.05
#: a collection that frees fewer objects than this ends a release: the closed sessions
#: are gone (open sessions make a little garbage all the time; it is not waited for)
QUIET_FREED = 1000


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim`` or ``None`` (other C libraries, other systems)."""
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


#: the open sessions (any object standing for one; see :func:`track_session`)
_sessions: weakref.WeakSet = weakref.WeakSet()


def track_session(obj) -> None:
    """Count ``obj`` as an open session until it is garbage-collected."""
    _sessions.add(obj)


def open_sessions() -> int:
    """Sessions tracked and not yet collected."""
    return len(_sessions)


def release_memory(max_passes: int = MAX_PASSES, trim: bool = True,
                   freeze: bool | None = None) -> dict:
    """Collect cyclic garbage until a full pass frees (almost) nothing, then trim the C heap.

    ``freeze`` (default: when no session is open after the collections) moves every
    surviving object to the collector's permanent generation (``gc.freeze``): with no
    session open these are the process's own imports and caches, which later full
    collections then no longer scan.  Objects freed by reference counting (evicted cache
    entries, arrays) are still freed as before.

    Returns ``{"passes", "freed", "longest_pass_s", "seconds", "trimmed", "frozen",
    "open_sessions"}``: the number of full collections, the objects each found
    unreachable, the longest and the total time of the collections, whether
    ``malloc_trim`` ran, the objects in the permanent generation afterwards and the
    sessions still open.
    """
    times: list[float] = []
    freed: list[int] = []
    while _collect_once(freed, times, max_passes):
        pass
    return _finish(freed, times, trim, freeze)


def _collect_once(freed: list[int], times: list[float], max_passes: int = MAX_PASSES
                  ) -> bool:
    """One full collection, recorded in ``freed`` and ``times``; whether to run another."""
    t0 = time.perf_counter()
    n = gc.collect()
    times.append(time.perf_counter() - t0)
    freed.append(n)
    return n >= QUIET_FREED and len(freed) < max(1, int(max_passes))


def _finish(freed: list[int], times: list[float], trim: bool = True,
            freeze: bool | None = None) -> dict:
    """After the collections: freeze (when no session is open) and trim the C heap."""
    t0 = time.perf_counter()
    still_open = open_sessions()
    if freeze is None:
        freeze = still_open == 0
    if freeze:
        gc.freeze()
    trimmed = False
    fn = _malloc_trim() if trim else None
    if fn is not None:
        fn(0)
        trimmed = True
    times = [*times, time.perf_counter() - t0]
    return {"passes": len(freed), "freed": freed, "longest_pass_s": max(times),
            "seconds": sum(times), "trimmed": trimmed, "frozen": gc.get_freeze_count(),
            "open_sessions": still_open}


def freeze_startup() -> int:
    """Collect, then freeze every object alive (``gc.freeze``); returns how many.

    Call once when the server has loaded and **before** any session exists
    (``app/app_hooks.py``): frozen objects are never examined by the collector again.
    """
    gc.collect()
    gc.freeze()
    n = gc.get_freeze_count()
    log.info("server loaded: %d objects of the imports frozen out of garbage collection", n)
    return n


class _Debounced:
    """One pending release per event loop, pushed back by every new request.

    The collections run one per turn of the event loop (``PASS_GAP_S`` apart), so that
    the other sessions' callbacks run between them: a page pauses for one pass at most.
    """

    def __init__(self):
        self.handle: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.freed: list[int] = []
        self.times: list[float] = []
        self.last: dict | None = None

    def request(self, delay: float, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        try:
            loop = loop or asyncio.get_running_loop()
        except RuntimeError:
            return False  # no event loop (a script, a test): nothing to schedule on
        if self.handle is not None:
            self.handle.cancel()
        self.loop, self.freed, self.times = loop, [], []
        self._later(delay)
        return True

    def _later(self, delay: float) -> None:
        # an empty context: the timer must not keep the closing session's context
        # variables (Panel's current document) alive while it waits
        self.handle = self.loop.call_later(delay, self._step, context=contextvars.Context())

    def _step(self) -> None:
        self.handle = None
        if _collect_once(self.freed, self.times):
            self._later(PASS_GAP_S)
            return
        r = self.last = _finish(self.freed, self.times)
        log.info("released closed sessions: %d collections freed %s objects, longest pause "
                 "%.3f s, %.2f s in all%s; %d sessions open, %d objects frozen", r["passes"],
                 r["freed"], r["longest_pass_s"], r["seconds"],
                 ", C heap trimmed" if r["trimmed"] else "", r["open_sessions"], r["frozen"])


_pending = _Debounced()


@functools.lru_cache(maxsize=1)
def check_allocator() -> bool:
    """Whether the server runs with :data:`SERVE_ENV`; says so in the log once if not."""
    ok = all(os.environ.get(k) == v for k, v in SERVE_ENV.items())
    if not ok:
        log.warning("served without %s: the memory of closed sessions stays with the "
                    "server process (use `make serve`, or set it yourself)",
                    " ".join(f"{k}={v}" for k, v in SERVE_ENV.items()))
    return ok


def schedule_release(delay: float = RELEASE_DELAY_S) -> bool:
    """Release memory ``delay`` seconds after the last call (on the running event loop).

    Returns ``False`` when there is no running loop (nothing scheduled).
    """
    return _pending.request(delay)


# ---------------------------------------------------------------------- closed sessions
# The private internals of HoloViews and Panel the app relies on, each with the public API
# it stands in for (the fast image write's plot handle is app.maps.image_source).
# tests/test_app_memory.py::test_private_internals_are_still_there fails with the name of
# the one that disappeared after an upgrade.
#: (owner, attribute, what it is and the public API it stands in for)
PRIVATE_INTERNALS = (
    ("holoviews.Store", "_custom_options",
     "per-backend option trees by element id; no public API drops one element's options "
     "(hv.Store.custom_options() returns the same dict for the current backend only)"),
    ("holoviews.Store", "_weakrefs",
     "the weak references that drop an element's options when it is collected; no public "
     "API removes one"),
    ("holoviews.Store", "_lookup_cache",
     "HoloViews' memo of resolved options; hv.Store.set_options clears it, but only for "
     "options being set, not removed"),
    ("panel.state", "_views",
     "Panel's registry of served views (pn.state.views is not public for removal); Panel "
     "1.9 drops only the page's own root when a session ends"),
    ("panel.reactive.Syncable", "_process_events",
     "overridden by app/guard.py (issue 17): Panel has no public hook that sees a browser "
     "value before converting it"),
)


def holoviews_ids(obj) -> set[int]:
    """The option ids of a HoloViews object and of everything it is built from: the items
    of layouts, overlays and maps, the cached frames and the inputs of dynamic maps."""
    from holoviews.core.dimension import LabelledData
    from holoviews.core.spaces import DynamicMap

    ids: set[int] = set()
    seen: set[int] = set()
    stack = [obj]
    while stack:
        o = stack.pop()
        if not isinstance(o, LabelledData) or id(o) in seen:
            continue
        seen.add(id(o))
        if o.id is not None:
            ids.add(o.id)
        data = getattr(o, "data", None)
        if isinstance(data, dict):
            stack.extend(data.values())
        elif isinstance(data, list):
            stack.extend(data)
        if isinstance(o, DynamicMap):
            stack.extend(o.callback.inputs)
    return ids


def drop_session_registries(maps_object, doc) -> tuple[int, int]:
    """Drop a closed session from the two process-wide registries that keep it alive.

    * HoloViews' option store (``hv.Store._custom_options``) keeps an element's options
      until the element is garbage-collected.  The maps' options hold hooks and parameter
      references into the session, and the session holds the elements: a cycle through a
      global that the collector never frees.  The entries of ``maps_object`` are dropped.
    * Panel's ``state._views`` keeps the notification area of every page (Panel 1.9 drops
      only the page's own root when the session ends) and, through it, the session's
      document with every model and widget.  The entries of ``doc`` are dropped.

    Returns the numbers of HoloViews option trees and of Panel views dropped.
    """
    import holoviews as hv
    import panel as pn

    ids = holoviews_ids(maps_object) if maps_object is not None else set()
    trees = 0
    # private: no public API removes one element's options (see PRIVATE_INTERNALS)
    for backend_trees in hv.Store._custom_options.values():
        for i in ids:
            trees += backend_trees.pop(i, None) is not None
    for i in ids:
        hv.Store._weakrefs.pop(i, None)
    # the options were changed: drop HoloViews' lookup memo, as HoloViews itself does on
    # every change of options (hv.Store.set_options; it holds the resolved options, hooks
    # included)
    for backend in list(hv.Store._lookup_cache):
        hv.Store._lookup_cache[backend] = {}
    # private: Panel has no public API to forget a served view (see PRIVATE_INTERNALS)
    views = [ref for ref, (_view, _root, vdoc, _comm) in list(pn.state._views.items())
             if doc is not None and vdoc is doc]
    for ref in views:
        pn.state._views.pop(ref, None)
    return trees, len(views)


__all__ = ["MAX_PASSES", "PASS_GAP_S", "PRIVATE_INTERNALS", "QUIET_FREED",
           "RELEASE_DELAY_S", "SERVE_ENV", "check_allocator", "drop_session_registries",
           "freeze_startup", "holoviews_ids", "open_sessions",
           "release_memory", "schedule_release", "track_session"]
