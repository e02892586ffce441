"""The session's period fills and auto-fill (a mixin of :class:`app.controller.Explorer`).

"Fill this period" runs :meth:`app.data.DataHub.fill_period` (the engine of
``build-series``, in the hub's worker) with progress and cancel; auto-fill fills each
newly shown day of a small region in the background.  The shown day is reloaded as soon as
its fill exists; the fills stay in the hub's memory, so browsing the period shows them.
"""

from __future__ import annotations

import logging
import threading

import pandas as pd

from app import fill, jobs
from data_catalog import schema

log = logging.getLogger(__name__)


class PeriodFills:
    """Period fills of a session; needs the controller's ``hub``, ``state``, ``fields``,
    ``load``, ``notify``, ``dispatch``, ``refresh_selection`` and its ``fill_*`` and
    ``auto_fill`` parameters."""

    def _can_fill(self, busy: bool) -> bool:
        """Whether a fill (of the day or of a period) may start: none of its kind ``busy``,
        a day shown, and a source and checkpoint that can fill (else the user is told
        why)."""
        if busy or self.fields is None:
            return False
        if self.fill_problem:
            self.notify(self.fill_problem, "info")
            return False
        return True

    async def fill_this_period(self, start, end) -> None:
        """Fill the shown region over ``start..end`` in the worker (the engine of
        ``build-series``), with progress; the shown day appears as soon as its block is
        done, and every day of the period stays filled while browsing."""
        if not self._can_fill(self.fill_running):
            return
        s = self.state
        period, msgs = s.check_fill_period(start, end)
        if period is None:
            self.notify(msgs)
            return
        self._fill_cancel = cancel = threading.Event()
        self.fill_running, self.fill_progress = True, 0
        self.fill_status = "starting the period fill"
        progress = jobs.Progress()
        key = (s.source, s.region, s.checkpoint)

        def tick(frac: float, msg: str) -> None:
            self.fill_progress = int(min(99, 100 * frac))
            self.fill_status = f"filling {period[0]:%Y-%m-%d} to {period[1]:%Y-%m-%d}: {msg}"
            self._show_new_fill(key)

        try:
            info = await jobs.run(
                "Period fill", lambda: self.hub.fill_period(
                    s.source, s.region, *period, s.checkpoint, progress, cancel),
                progress, tick, notify=self.notify,
                status=lambda line: setattr(self, "fill_status", line),
                done=lambda: setattr(self, "fill_running", False),
                passthrough=(fill.FillCancelled,))
        except fill.FillCancelled as exc:
            self.fill_status = f"{exc}; the days done stay filled"
            self._show_new_fill(key)
            return
        if info is None:
            return
        self.fill_progress = 100
        self.last_period = (key, period)
        self.fill_status = (f"filled {info['days']} days ({period[0]:%Y-%m-%d} to "
                            f"{period[1]:%Y-%m-%d}) on {info['device']} in "
                            f"{info['seconds']} s")
        self._show_new_fill(key)

    def cancel_fill(self) -> None:
        """Stop the running period fill after its current block of days."""
        self._fill_cancel.set()

    def _show_new_fill(self, key) -> None:
        """Reload the shown day when a fill of it has just arrived."""
        s = self.state
        if key != (s.source, s.region, s.checkpoint) or self.fields is None:
            return
        if self.fields.filled is None and self.hub.has_filled(s.source, s.region, s.day,
                                                              s.checkpoint):
            self.load()
            if s.station or s.has_pixel:
                self.refresh_selection(only_marker=True)

    def maybe_auto_fill(self) -> None:
        """With auto-fill on, fill the newly shown day in the background when the region is
        small enough (:func:`app.fill.auto_fill_allowed`)."""
        f, s = self.fields, self.state
        if (not self.auto_fill or f is None or f.filled is not None or self.fill_running
                or f.sensor == schema.SENSOR_NONE or self.fill_problem):
            return
        if not fill.auto_fill_allowed(f.amsr.shape):
            self.fill_status = (f"auto-fill is off for regions over "
                                f"{fill.AUTO_FILL_MAX_CELLS} cells; use Fill this period")
            return
        key = (s.source, s.region, s.checkpoint)
        job = (*key, s.day)
        if job in self._auto_jobs:
            return
        self._auto_jobs.add(job)
        self.fill_status = f"auto-filling {s.day:%Y-%m-%d}…"
        fut = self.hub.fill_period(s.source, s.region, s.day, s.day, s.checkpoint,
                                   origin="auto")

        def done(fu):
            try:
                fu.result()
                msg = f"auto-filled {job[-1]:%Y-%m-%d}"
            except Exception as exc:  # noqa: BLE001 - reported in the status line
                log.info("auto-fill failed: %s", exc)
                msg = f"auto-fill failed: {exc}"

            def apply():
                self._auto_jobs.discard(job)
                self.fill_status = msg
                self._show_new_fill(key)

            self.dispatch(apply)

        fut.add_done_callback(done)


    def export_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The days a netCDF export holds: the filled period around the shown day when
        one was filled for this region, else the shown day."""
        s = self.state
        key, period = getattr(self, "last_period", (None, None))
        if period is not None and key == (s.source, s.region, s.checkpoint) and \
                period[0] <= s.day <= period[1]:
            return period
        return s.day, s.day

    def export_days(self) -> list:
        """The filled days of :meth:`export_period` (those the hub still holds)."""
        s = self.state
        first, last = self.export_period()
        if first == last:
            return [self.fields] if self.fields is not None else []
        days = [self.hub.day(s.source, s.region, d, s.checkpoint, prefetch=False)
                for d in pd.date_range(first, last)]
        return [d for d in days if d.filled is not None]
