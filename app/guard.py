"""Browser values are checked before Panel converts them: guarded widgets and location.

Panel turns what a browser sends into parameter values (``Syncable._process_events`` ->
``_process_property_change`` -> ``param.update``) before any watcher of the app runs.  A
value that no real widget sends but anyone can forge through the Bokeh document (an option
that is not in the list, a slider at 1e300 or NaN, a date picker's garbage text, a spinner
at -1e308, a query string of 5,000 digits) fails inside that conversion: Panel logs a
traceback and hands the error to the generic exception handler, and the forged value stays
in the widget.

Panel has no public hook that sees a raw browser value first, so the widgets here override
``_process_events`` (a private method; this module is the one place in the app that reaches
into Panel, and ``tests/test_app_guard.py`` fails when its signature or role changes; the
day picker also overrides ``DatetimePicker``'s value conversions, see :class:`DatePicker`).  Each
raw value is checked with :mod:`data_catalog.inputs`; a refused value is reported through
the widget's ``refused`` callback (the session's :meth:`~app.controller.Explorer.notify`)
with a specific message, and the browser's widget is set back to the server's value.  The
state is never touched.  Anything the checks let through and Panel still cannot apply is
refused the same way, so no value a browser can send reaches the generic handler.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.io.location import Location as PanelLocation
from panel.util import parse_query

from data_catalog import inputs

log = logging.getLogger(__name__)

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class Guarded:
    """Mixin for a Panel widget: check every raw browser value, refuse and reset.

    Subclasses implement :meth:`check_browser`; set ``refused`` to a callable that shows a
    message (the widget's own session is the only one that sees it).
    """

    #: shows the message of a refused value (set per widget; None: only logged)
    refused: Callable[[str], None] | None = None
    #: appended to the message of a refused value
    kept = "; kept the current value."

    def check_browser(self, prop: str, value) -> str:
        """``""`` to accept the raw value of Bokeh property ``prop``, else why not."""
        return ""

    def _label(self) -> str:
        return str(getattr(self, "label", None) or getattr(self, "name", "")
                   or type(self).__name__)

    def _process_events(self, events: dict) -> None:  # Panel's private hook, see above
        why = ""
        for prop, value in events.items():
            try:
                why = self.check_browser(prop, value)
            except Exception as exc:  # noqa: BLE001 - a check must never break the session
                why = f"{self._label()}: {inputs.shown(value)} is not a valid value " \
                      f"({type(exc).__name__})"
            if why:
                break
        if not why:
            try:
                super()._process_events(events)  # type: ignore[misc]
                return
            except Exception as exc:  # noqa: BLE001 - refused below, not a server error
                why = (f"{self._label()}: could not apply "
                       f"{inputs.shown(next(iter(events.values()), None))} "
                       f"({type(exc).__name__})")
        self._refuse(why)

    def _refuse(self, why: str) -> None:
        log.warning("refused a browser value: %s", why)
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            # after this event: Panel skips model updates of a property it is receiving
            doc.add_next_tick_callback(self._reset_browser)
        else:
            self._reset_browser()
        if self.refused is not None:
            self.refused(f"{why}{self.kept}")

    def _reset_browser(self) -> None:
        """Send the server's value to the browser again (the forged one is showing)."""
        self.param.trigger("value")  # type: ignore[attr-defined]


class Select(Guarded, pn.widgets.Select):
    """A select whose browser value must be one of its options."""

    def check_browser(self, prop, value):
        if prop != "value":
            return ""
        if isinstance(value, str) and len(value) <= inputs.MAX_TEXT and (
                value in self.unicode_values or value in self.labels):
            return ""
        return f"{self._label()} {inputs.shown(value)} is not one of the choices"


class DatePicker(Guarded, pn.widgets.DatetimePicker):
    """A day picker whose browser value must be a day YYYY-MM-DD between start and end.

    Built on Panel's ``DatetimePicker`` (days only), whose Bokeh model holds the value as
    text: Bokeh's own ``DatePicker`` model validates an ISO date before Panel sees it, so a
    forged garbage date was refused by Bokeh's protocol handler, with a logged traceback,
    no message and the forged text left showing.  Here every text reaches the check.
    The value is a ``datetime`` at 00:00 (``DatetimePicker``'s bounds are datetimes).
    """

    date_format = param.String(default="Y-m-d", doc="""
        flatpickr format of the shown and sent value (a day).""")

    def __init__(self, **params):
        params.setdefault("enable_time", False)
        super().__init__(**params)

    def check_browser(self, prop, value):
        if prop != "value":
            return ""
        if not isinstance(value, str) or not _DAY.fullmatch(value[:11]):
            return f"{self._label()} {inputs.shown(value)} is not a day YYYY-MM-DD"
        try:
            inputs.check_day_in(value, self.start, self.end, self._label())
        except inputs.InputError as exc:
            return str(exc)
        return ""

    def _serialize_value(self, value):  # browser text -> value (Panel's hook)
        if isinstance(value, str) and value:
            return dt.datetime.strptime(value, "%Y-%m-%d")
        return value

    def _deserialize_value(self, value):  # value -> browser text (Panel's hook)
        if isinstance(value, dt.date):
            return value.strftime("%Y-%m-%d")
        return value


class DateSlider(Guarded, pn.widgets.DateSlider):
    """A date slider whose browser value (ms since 1970, or a date) must lie on the slider."""

    def check_browser(self, prop, value):
        if prop not in ("value", "value_throttled"):
            return ""
        try:
            if isinstance(value, int | float | np.number) and not isinstance(value, bool):
                ms = inputs.check_number(value, self._label())
                # the slider's own range in ms: no conversion of 1e300 is ever tried
                lo, hi = (_ms(self.start), _ms(self.end) + 86_400_000 - 1)
                if not lo <= ms <= hi:
                    return (f"{self._label()} value {ms:g} ms is not a day between "
                            f"{_day(self.start)} and {_day(self.end)}")
            else:
                inputs.check_day_in(value, self.start, self.end, self._label())
        except inputs.InputError as exc:
            return str(exc)
        return ""


class RangeSlider(Guarded, pn.widgets.RangeSlider):
    """A range slider whose browser value must be two finite numbers low <= high inside it."""

    def check_browser(self, prop, value):
        if prop not in ("value", "value_throttled"):
            return ""
        if not isinstance(value, list | tuple) or len(value) != 2:
            return f"{self._label()} {inputs.shown(value)} is not two numbers"
        try:
            lo = inputs.check_number(value[0], f"{self._label()} low", self.start, self.end)
            hi = inputs.check_number(value[1], f"{self._label()} high", self.start, self.end)
        except inputs.InputError as exc:
            return str(exc)
        return "" if lo <= hi else f"{self._label()} needs low <= high"


class FloatInput(Guarded, pn.widgets.FloatInput):
    """A number input whose browser value must be finite and inside ``start..end`` (or
    empty: the user cleared the box)."""

    def check_browser(self, prop, value):
        if prop not in ("value", "value_throttled") or value is None:
            return ""
        try:
            inputs.check_number(value, self._label(), self.start, self.end)
        except inputs.InputError as exc:
            return str(exc)
        return ""


class TextInput(Guarded, pn.widgets.TextInput):
    """A one-line text box whose browser value must be a short text (what it means is
    checked by the state's ``request_*``)."""

    def check_browser(self, prop, value):
        if prop in ("value", "value_input") and not (
                isinstance(value, str) and len(value) <= inputs.MAX_TEXT):
            return f"{self._label()}: {inputs.shown(value)} is not a short text"
        return ""


class Checkbox(Guarded, pn.widgets.Checkbox):
    """A checkbox whose browser value must be a boolean."""

    def check_browser(self, prop, value):
        if prop == "active" and not isinstance(value, bool):
            return f"{self._label()} {inputs.shown(value)} is not on or off"
        return ""


class FileDownload(Guarded, pn.widgets.FileDownload):
    """A download button whose click is refused, saying why, while it is disabled (a
    disabled button can still be clicked by a forged message)."""

    kept = "."
    #: the message of a click while disabled
    disabled_reason = "Nothing to export yet"

    def check_browser(self, prop, value):
        if prop == "clicks" and self.disabled:
            return self.disabled_reason
        return ""

    def _reset_browser(self) -> None:
        self.param.trigger("disabled")


class Tabulator(Guarded, pn.widgets.Tabulator):
    """A read-only table: the browser may select rows that exist, and edit nothing."""

    kept = "."

    def check_browser(self, prop, value):
        if prop == "data":
            return f"{self._label()} is read-only; the edit was not applied"
        if prop == "indices":
            n = 0 if self.value is None else len(self.value)
            if not isinstance(value, list) or len(value) > n or not all(
                    isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n
                    for i in value):
                return f"{self._label()}: selection {inputs.shown(value)} is not rows " \
                       "of the table"
        return ""

    def _reset_browser(self) -> None:
        self.param.trigger("value", "selection")


class Location(Guarded, PanelLocation):
    """The page's URL, whose query Panel parses only after over-long values are dropped.

    Panel's ``query_params`` turns every digit string into an ``int``: 5,000 digits raise
    inside Panel before the app sees them (and again whenever the browser reports its URL).
    Here a value longer than :data:`~data_catalog.inputs.MAX_TEXT` is dropped first; the app
    reads the raw strings itself (:func:`app.state.read_query`) and says what it refused.
    """

    @property
    def query_params(self) -> dict:
        return parse_query(bounded_search(self.search))

    def check_browser(self, prop, value):
        if prop in ("search", "hash", "pathname") and (
                not isinstance(value, str) or len(value) > 8192):
            return f"URL {prop} {inputs.shown(value)} is not a URL part"
        return ""

    def _reset_browser(self) -> None:
        self.param.trigger("search")


def bounded_search(search: str) -> str:
    """``search`` without the parameters whose name or value is over-long (or with none
    at all when it has too many)."""
    from app.state import MAX_QUERY_FIELDS

    text = search[1:] if search.startswith("?") else search
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        return ""
    kept = [(k, v) for k, v in pairs if len(k) <= 64 and len(v) <= inputs.MAX_TEXT]
    return f"?{urlencode(kept)}" if kept else ""


def location() -> Location | None:
    """The guarded location of the current session (``None`` outside a server); pass it
    to ``servable(location=...)`` so that Panel uses it rather than its own."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return None
    return Location.from_request(doc.session_context.request)


def _ms(value) -> float:
    return pd.Timestamp(value).normalize().value / 1e6


def _day(value) -> str:
    return f"{pd.Timestamp(value):%Y-%m-%d}" if isinstance(value, dt.date) else str(value)
