"""The "Fill this period" and auto-fill controls (thin: the work is in app/filling.py).

The period's days are guarded pickers (a forged value is refused and reset, as every widget
of :mod:`app.guard`); the period is validated by the state before anything runs.
"""

from __future__ import annotations

import logging

import panel as pn
import param

from app import guard
from app.controller import Explorer
from app.fill import AUTO_FILL_MAX_CELLS
from app.text import as_markdown

log = logging.getLogger(__name__)


class FillPanel(pn.viewable.Viewer):
    """Fill the shown region over a period (default the shown month), or each shown day."""

    app = param.ClassSelector(class_=Explorer)

    def __init__(self, **params):
        super().__init__(**params)
        a, s = self.app, self.app.state
        lo, hi = s.grid.start.to_pydatetime(), s.grid.end.to_pydatetime()
        first, last = s.month_period()
        self.start = guard.DatePicker(label="Fill from", value=first.to_pydatetime(),
                                      start=lo, end=hi, width=135)
        self.end = guard.DatePicker(label="to", value=last.to_pydatetime(), start=lo, end=hi,
                                    width=135)
        self.button = pn.widgets.Button(label="Fill this period", button_type="primary",
                                        css_classes=["fill-period"])
        self.cancel = pn.widgets.Button(label="Cancel fill", visible=False,
                                        css_classes=["fill-cancel"])
        self.bar = pn.indicators.Progress(name="Fill progress", value=0, max=100, width=260,
                                          visible=False, css_classes=["fill-progress"])
        self.auto = guard.Checkbox(
            label=f"Auto-fill each shown day (regions up to {AUTO_FILL_MAX_CELLS} cells)",
            value=a.auto_fill, css_classes=["auto-fill"])
        self.status = pn.pane.Markdown("", css_classes=["fill-status"],
                                       styles={"font-size": "small"})
        for w in (self.start, self.end, self.auto):
            w.refused = a.notify
        self.button.on_click(self._fill)
        self.cancel.on_click(lambda _: a.cancel_fill())
        self.auto.param.watch(self._auto, "value")
        a.param.watch(self._refresh, ["fill_running", "fill_progress", "fill_status"])
        s.param.watch(lambda *_: a.dispatch(self._follow_month), ["date"])
        self._refresh()

    async def _fill(self, _):
        await self.app.fill_this_period(self.start.value, self.end.value)

    def _auto(self, e):
        log.info("auto-fill %s", "on" if e.new else "off")
        self.app.auto_fill = bool(e.new)
        if e.new:
            self.app.maybe_auto_fill()

    def _follow_month(self):
        """A new month shown: it becomes the default period (not while a fill runs)."""
        if self.app.fill_running:
            return
        first, last = self.app.state.month_period()
        if not (first <= self.start.value <= last):
            self.start.value, self.end.value = first.to_pydatetime(), last.to_pydatetime()

    def _refresh(self, *_):
        a = self.app
        self.bar.visible = self.cancel.visible = a.fill_running
        self.bar.value = a.fill_progress
        self.button.disabled = a.fill_running or bool(a.fill_problem)
        self.status.object = as_markdown(a.fill_status)

    def __panel__(self):
        return pn.Column("### Fill", pn.Row(self.start, self.end), pn.Row(self.button,
                         self.cancel), self.bar, self.status, self.auto, width=300)
