"""Entry point of the Bokeh directory app: ``panel serve app`` from the repository root.

Each browser session runs this module: it builds a fresh :class:`~app.controller.Explorer`
(state, maps) on the process-wide data hub and lays out the views.  Torch is not imported
here; it is loaded in the worker thread the first time someone presses *Run inference*.
"""

from __future__ import annotations

import logging

import panel as pn

from app import guard
from app.controller import Explorer
from app.data import get_hub
from app.fillview import FillPanel
from app.help import about_card
from app.maps import use_bokeh_backend
from app.mapview import MapControls
from app.memory import check_allocator
from app.player import DatePlayer
from app.state import URL_STATE, read_query
from app.text import as_markdown
from app.views import DetailView, InferencePanel, MapsView, NetworkView, Sidebar

log = logging.getLogger("app")  # its handler: app/__init__.py


def _exception_handler(exc: Exception) -> None:
    """Log the traceback on the server; show the user one plain line (no traceback)."""
    log.error("unhandled error in a callback", exc_info=exc)
    if pn.state.notifications is not None:
        pn.state.notifications.error(f"Something went wrong: {type(exc).__name__}. "
                                     "The rest of the app keeps working.", duration=8000)


pn.extension("tabulator", notifications=True, exception_handler=_exception_handler)
use_bokeh_backend()  # once per process; canvas, not WebGL (app/maps.py)


#: the URL is written this long after a change of the state (milliseconds)
URL_DELAY_MS = 250


def url_writer(app: Explorer):
    """A watcher that writes the whole state to the URL :data:`URL_DELAY_MS` after the
    first of a burst of changes (one write per burst), after the maps' update has gone out.

    Each URL write is a history entry in the browser (``pushState``) and its echo back to
    the server; written on every date step it delayed the maps, and a date player filled
    the history with a day per frame.
    """
    pending: list = []
    doc = pn.state.curdoc

    def write() -> None:
        pending.clear()
        app.url.param.update(**app.state.to_query())

    def later() -> None:  # on the server's event loop: its timers are not thread-safe
        doc.add_timeout_callback(write, URL_DELAY_MS)

    def changed(*_) -> None:
        if doc is None or doc.session_context is None:
            write()
        elif not pending:
            # a change may come from one of Panel's worker threads (--num-threads): only
            # the next-tick queue may be used from there
            pending.append(True)
            doc.add_next_tick_callback(later)

    return changed


def build_app(loc: guard.Location | None = None) -> pn.viewable.Viewable:
    """The page of one session; ``loc`` is its URL (:func:`app.guard.location`).

    A page is always served: URL parameters that are refused (over-long, not numbers, not
    in the record...) are named in a notification and replaced by defaults.
    """
    check_allocator()
    # the raw query strings, read by the app itself: Panel's parsing turns digit strings
    # into numbers and raised on 5,000 of them before the app saw anything
    query, msgs = read_query(loc.search) if loc is not None else ({}, [])
    app = Explorer(get_hub(), query=query)
    app.notify(msgs)  # queued until the page has loaded
    if app.fatal:
        return pn.Column(
            "# AMSR Gap-Fill Explorer",
            pn.pane.Alert(f"**Data not available.** {as_markdown(app.fatal)}",
                          alert_type="danger", css_classes=["fatal-message"]),
        )
    # state <-> URL: synced through plain strings, validated by the state
    if loc is not None:
        app.url.param.update(**app.state.to_query())
        loc.sync(app.url, list(app.state.to_query()))
        app.state.param.watch(url_writer(app), list(URL_STATE))
    sidebar = Sidebar(app=app)
    maps = MapsView(app=app)
    page = pn.Row(
        pn.Column(sidebar, DatePlayer(app=app), FillPanel(app=app), about_card(), width=310,
                  css_classes=["sidebar"]),
        pn.Column(InferencePanel(app=app), MapControls(app=app), maps, DetailView(app=app),
                  NetworkView(app=app), sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )
    pn.state.onload(app.flush_messages)
    # a closure, not a module-level function: Bokeh clears this module's globals when the
    # session's document is destroyed, before the session-destroyed callbacks run
    pn.state.on_session_destroyed(lambda ctx: app.cleanup())
    return page


if __name__.startswith("bokeh"):
    _loc = guard.location()
    build_app(_loc).servable(title="AMSR Gap-Fill Explorer",
                             location=_loc if _loc is not None else True)
