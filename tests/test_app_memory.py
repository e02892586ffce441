"""Closed sessions give their memory back (app/memory.py, app/app_hooks.py).

No browser and no server: the collections, the debounced release on an event loop, and,
each in a fresh interpreter, the first session of a process being freed and the freezing
of the imports when the server loads.  ``bench.load`` measures the served figures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import os
import platform
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest

from app import memory
from bench.serving import REPO, SMALL_DATE


class _Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _cycles(n: int) -> list[weakref.ref]:
    out = []
    for _ in range(n):
        node = _Node()
        out.append(weakref.ref(node))
    return out


def test_release_memory_collects_cycles_and_reports():
    # no automatic collection before the release: one triggered by any thread's
    # allocations (a read-ahead of an earlier test's hub still running) freed the cycles
    gc.disable()
    try:
        refs = _cycles(50)
        assert all(r() is not None for r in refs)  # refcounting alone cannot free a cycle
        r = memory.release_memory(freeze=False)
    finally:
        gc.enable()
    assert all(ref() is None for ref in refs)
    assert r["passes"] >= 1 and r["freed"][0] >= 50
    assert r["freed"][-1] < memory.QUIET_FREED or r["passes"] == memory.MAX_PASSES
    assert r["seconds"] >= r["longest_pass_s"] > 0
    # glibc (this project's Linux images) has malloc_trim: the heap must have been trimmed
    if platform.libc_ver()[0] == "glibc":
        assert r["trimmed"] is True
    assert memory.release_memory(trim=False, freeze=False)["trimmed"] is False


def test_private_internals_are_still_there():
    """The HoloViews / Panel internals the app relies on exist (else: which, and why)."""
    import importlib

    import bokeh.document
    import holoviews as hv
    import panel as pn

    from app.maps import image_source, use_bokeh_backend

    for owner, attr, why in memory.PRIVATE_INTERNALS:
        mod, _, name = owner.rpartition(".")
        obj = getattr(importlib.import_module(mod), name)
        assert hasattr(obj, attr), (
            f"{owner}.{attr} is gone after an upgrade of HoloViews/Panel: app/memory.py "
            f"uses it ({why}); find what replaced it before releasing closed sessions again")
    use_bokeh_backend()
    plot = hv.renderer("bokeh").get_plot(hv.Image(np.zeros((3, 4))),
                                         doc=bokeh.document.Document())
    src = image_source(plot)
    assert src is not None and "image" in src.data, (
        "HoloViews' image plots no longer hold their Bokeh data source in "
        "plot.handles['source'] (an upgrade of HoloViews?): app/maps.py::image_source "
        "feeds the fast date change from it")
    assert isinstance(pn.state._views, dict)


def test_release_memory_does_not_freeze_while_a_session_is_open():
    session = _Node()
    memory.track_session(session)
    before = gc.get_freeze_count()
    r = memory.release_memory()  # freeze=None: only with no session open
    assert r["open_sessions"] >= 1
    assert gc.get_freeze_count() == before
    del session


def test_scheduled_release_is_debounced_and_keeps_no_context():
    """Two requests in a row run one release, ``delay`` after the second; the pending
    timer does not hold the requesting session's context variables."""
    # in a thread of its own: pytest-playwright's sync API keeps an event loop running in
    # the main thread once a browser test has run, and this test needs a thread without one
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(_debounced_release_without_a_loop).result()


def _debounced_release_without_a_loop():
    var = contextvars.ContextVar("doc")
    keep = _Node()
    memory.track_session(keep)  # an open session: the release must not freeze

    async def main():
        loop = asyncio.get_running_loop()
        deb = memory._Debounced()
        doc = _Node()
        doc_ref = weakref.ref(doc)
        ctx = contextvars.copy_context()
        ctx.run(var.set, doc)
        assert ctx.run(deb.request, 0.2)
        first = deb.handle
        t_second = loop.time()
        assert ctx.run(deb.request, 0.3)  # pushes the first one back
        assert first.cancelled() and deb.handle is not first
        assert deb.handle.when() >= t_second + 0.3 - 1e-3
        del doc, ctx
        gc.collect()
        assert doc_ref() is None  # the waiting timer kept no copy of the context
        refs = _cycles(5)
        for _ in range(400):
            await asyncio.sleep(0.05)
            if deb.last is not None:
                break
        assert deb.last is not None and deb.handle is None
        assert all(r() is None for r in refs)
        return deb.last

    # in a thread of its own: in a session with the browser tests, playwright's sync API
    # leaves its event loop marked running in the main thread (asyncio.run would refuse,
    # and schedule_release would find that loop)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        last = pool.submit(asyncio.run, main()).result()
        assert last["passes"] >= 1 and last["open_sessions"] >= 1
        # no running loop: nothing scheduled
        assert not pool.submit(memory.schedule_release).result()
    del keep


def _run_script(code: str, env: dict, timeout: int = 240) -> str:
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                       env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    return p.stdout


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_first_session_of_a_process_is_freed(world_path, tmp_path):
    """The first session's reads start zarr's own event loop; the hub reads outside the
    session's context variables, so that loop does not keep the session's document."""
    out = _run_script(f"""
        import contextvars, gc, weakref, warnings
        warnings.simplefilter("ignore")
        import bokeh.document, panel as pn
        from panel.io.state import set_curdoc
        from app.controller import Explorer
        from app.data import DataHub
        from app.memory import release_memory
        from app.views import MapsView

        def session(hub):
            doc = bokeh.document.Document()
            with set_curdoc(doc):
                app = Explorer(hub, query={{"date": "{SMALL_DATE}"}})
                page = pn.Column(MapsView(app=app))
                root = page.get_root(doc)
                app.state.step_date(1)
            page._cleanup(root)
            pn.state._views.pop(root.ref["id"], None)
            app.cleanup()
            return weakref.ref(app), weakref.ref(doc)

        hub = DataHub(readahead=0)
        # each server callback runs in its own copy of the context, as here
        app_ref, doc_ref = contextvars.copy_context().run(session, hub)
        release_memory(freeze=False)
        print("ALIVE", app_ref() is not None, doc_ref() is not None)
    """, {"GAPFILL_DEMO": str(world_path), "GAPFILL_CACHE": str(tmp_path / "cache"),
          "GAPFILL_CHECKPOINTS": str(tmp_path / "none")})
    assert "ALIVE False False" in out, out


def test_server_hook_freezes_the_imports_only():
    out = _run_script("""
        import gc, weakref
        from app.app_hooks import on_server_loaded
        on_server_loaded(None)
        frozen = gc.get_freeze_count()
        class Node:
            pass
        n = Node(); n.me = n; ref = weakref.ref(n); del n
        gc.collect()
        print("FROZEN", frozen, "LATER CYCLE FREED", ref() is None)
    """, {})
    words = out.split()
    assert int(words[words.index("FROZEN") + 1]) > 100_000  # Panel, HoloViews, xarray...
    assert "LATER CYCLE FREED True" in out


def test_make_serve_serves_with_the_server_environment():
    serve = [line for line in (Path(REPO) / "Makefile").read_text().splitlines()
             if "panel serve app" in line]
    assert len(serve) == 1
    for k, v in memory.SERVE_ENV.items():
        assert f"{k}={v}" in serve[0]
