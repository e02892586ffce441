"""Bokeh server hooks of the directory app: run once per server process, before any page.

``on_server_loaded`` imports the app's modules (Panel, HoloViews, Datashader, xarray...),
then moves everything alive to the garbage collector's permanent generation
(:func:`app.memory.freeze_startup`): the full collections that free closed sessions then
scan the sessions' objects only, not the ~450,000 objects of the imports, and the
other pages pause for a fraction of the time.  No session exists yet, so none is frozen.
"""

from __future__ import annotations


def on_server_loaded(server_context) -> None:
    import app.controller  # noqa: F401 - imported for its imports
    import app.views  # noqa: F401
    from app.maps import use_bokeh_backend
    from app.memory import check_allocator, freeze_startup

    use_bokeh_backend()
    check_allocator()
    freeze_startup()
