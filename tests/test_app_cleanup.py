"""A closed session can be garbage-collected (no browser, no server).

The server keeps every session's objects alive if anything process-wide still points into
them.  Two registries did: HoloViews' option store (the maps' options hold hooks and
parameter references into the session) and Panel's ``state._views`` (a rendered root keeps
its document, and with it every model and widget of the page).  ``Explorer.cleanup``, run
when the session ends, must leave nothing behind.
"""

from __future__ import annotations

import gc
import types

import bokeh.document
import holoviews as hv
import panel as pn
import pytest
from panel.io.state import set_curdoc

from bench.serving import SMALL_DATE, build_small_world

# app.views still uses Panel 1.x spellings (Widget name=, button_type=) that Panel marks as
# pending deprecation; they are not what these tests are about
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


@pytest.fixture(scope="module")
def world_path(tmp_path_factory):
    return build_small_world(tmp_path_factory.mktemp("app-cleanup") / "world.zarr")


@pytest.fixture
def env(world_path, tmp_path, monkeypatch):
    monkeypatch.setenv("GAPFILL_DEMO", str(world_path))
    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GAPFILL_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    return world_path


def _open_session(hub, doc):
    """A session's objects as the server builds them, rendered into ``doc``.

    Besides the page, a second root is rendered into the document the way Panel adds the
    notification area, which Panel does not clean up when the session ends.
    """
    from app.controller import Explorer
    from app.views import MapsView

    with set_curdoc(doc):
        app = Explorer(hub, query={"date": SMALL_DATE, "station": ""})
        page = pn.Column(MapsView(app=app))
        root = page.get_root(doc)  # renders the maps: plots, hooks, Bokeh models
        pn.pane.Markdown("a second root").get_root(doc)
        app.state.step_date(1)  # a date change through the fast path
    return app, page, root


def _panel_ends_session(page, root) -> None:
    """What Panel does with the page when a session ends (``Viewable._server_destroy``):
    clean up its models (and HoloViews plots) and forget the page's root."""
    page._cleanup(root)
    pn.state._views.pop(root.ref["id"], None)


def _reachable(*roots) -> set[int]:
    """ids of every object reachable from ``roots`` (modules and classes not entered)."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (types.ModuleType, type)):
            continue
        seen.add(id(o))
        stack.extend(gc.get_referents(o))
    return seen


def _registries():
    return (hv.Store._custom_options, hv.Store._lookup_cache, hv.Store._weakrefs,
            pn.state._views)


def test_closed_session_is_released_by_the_registries(env):
    from app.data import DataHub
    from app.memory import holoviews_ids

    hub = DataHub(readahead=0)
    doc = bokeh.document.Document()
    app, page, root = _open_session(hub, doc)
    assert app.maps_object is not None and app.maps.fast_updates == 1
    ids = holoviews_ids(app.maps_object)
    assert ids and ids & set(hv.Store._custom_options["bokeh"])
    _panel_ends_session(page, root)
    # without cleanup the process-wide registries still reach the session
    held = _reachable(*_registries())
    assert id(app) in held and id(doc) in held

    app.cleanup()
    gc.collect()  # the session's other elements die; HoloViews drops their options itself
    held = _reachable(*_registries())
    assert id(app) not in held and id(doc) not in held
    assert id(app.state) not in held and id(app.maps) not in held
    assert not ids & set(hv.Store._custom_options["bokeh"])
    assert not any(vdoc is doc for _v, _r, vdoc, _c in pn.state._views.values())
    hub.close()


def test_cleanup_leaves_other_sessions_working(env):
    """Cleaning up one session drops only its own options: another one keeps its styling."""
    from app.data import DataHub
    from app.memory import holoviews_ids

    hub = DataHub(readahead=0)
    first, page, root = _open_session(hub, bokeh.document.Document())
    second, *_ = _open_session(hub, bokeh.document.Document())
    kept = holoviews_ids(second.maps_object)
    _panel_ends_session(page, root)
    first.cleanup()
    assert kept and kept <= set(hv.Store._custom_options["bokeh"])
    second.state.step_date(1)
    assert second.maps.fast_updates == 2
    second.cleanup()
    hub.close()
