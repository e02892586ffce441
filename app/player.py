"""The date player: play / pause through the days at a chosen speed.

Each tick steps the state one day (validated like the next-day button); a tick that comes
while the previous date change is still being applied is skipped, so the player never
queues more frames than the in-place update can show.  Stops at the record's end.
"""

from __future__ import annotations

import panel as pn
import param

from app import guard
from app.controller import Explorer

#: label -> milliseconds per day
SPEEDS = {"1 day/s": 1000, "2 days/s": 500, "4 days/s": 250}


class DatePlayer(pn.viewable.Viewer):
    """A play/pause button and a speed selector."""

    app = param.ClassSelector(class_=Explorer)

    def __init__(self, **params):
        super().__init__(**params)
        self.button = pn.widgets.Button(label="▶ play", width=90, css_classes=["date-play"])
        self.speed = guard.Select(label="Speed", options=list(SPEEDS), value="2 days/s",
                                  width=110)
        self.speed.refused = self.app.notify
        self.button.on_click(self._toggle)
        self.speed.param.watch(self._restart, "value")
        self._cb = None
        self._busy = False

    @property
    def playing(self) -> bool:
        return self._cb is not None

    def _toggle(self, _=None):
        if self.playing:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        self._cb = pn.state.add_periodic_callback(self._tick, period=SPEEDS[self.speed.value])
        self.button.label = "❚❚ pause"

    def stop(self) -> None:
        if self._cb is not None:
            self._cb.stop()
        self._cb = None
        self.button.label = "▶ play"

    def _restart(self, *_):
        if self.playing:
            self.stop()
            self.start()

    def _tick(self):
        if self._busy:  # the last day is still being drawn: skip this frame
            return
        s = self.app.state
        before = s.day
        self._busy = True
        try:
            self.app.notify(s.step_date(1))
        finally:
            self._busy = False
        if s.day == before:  # the end of the record
            self.stop()

    def __panel__(self):
        return pn.Row(self.button, self.speed)
