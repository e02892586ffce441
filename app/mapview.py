"""The controls beside the maps: which map the fourth place shows, whether fills under
frozen ground are drawn, and a note when the shown day has no ASCAT.

Thin, as every view: the choice and the toggle go through the state's validation
(``request_map``; a forged value is refused by :mod:`app.guard`), and the maps follow the
state (a new choice rebuilds them, the toggle updates them in place).
"""

from __future__ import annotations

import panel as pn
import param

from app import guard
from app.controller import Explorer
from app.mapspecs import no_ascat_note
from app.text import as_markdown

#: the help beside the controls (the About panel says more)
HELP = ("*Filled − ASCAT*: ASCAT mean/SD-matched to the observed AMSR cells of the region "
        "that day (to the filled field when too few were observed). Fills under frozen "
        "ground are hidden unless shown: the model has little skill there (R about 0.5 "
        "against the truth) and no radiometer measures frozen soil moisture.")


class MapControls(pn.viewable.Viewer):
    """The fourth map's selector, the frozen-ground toggle and the no-ASCAT note."""

    app = param.ClassSelector(class_=Explorer)

    def __init__(self, **params):
        super().__init__(**params)
        a, s = self.app, self.app.state
        shown = a.maps.maps[-1].name if a.maps.maps else ""
        # labels go to the browser; the state checks the name it gets back
        self.choice = guard.Select(name="Fourth map",
                                   options={label: name for name, label in
                                            s.map_choices.items()},
                                   value=s.fourth or shown, width=260,
                                   css_classes=["map-choice"])
        self.frozen = guard.Checkbox(name="Show fills under frozen ground",
                                     value=s.show_frozen, css_classes=["show-frozen"])
        self.note = pn.pane.Markdown("", css_classes=["no-ascat-note"],
                                     styles={"font-size": "small", "color": "#8B4513"})
        self.help = pn.pane.Markdown(HELP, styles={"font-size": "small"}, width=520)
        for w in (self.choice, self.frozen):
            w.refused = a.notify
        self.choice.param.watch(self._choice, "value")
        self.frozen.param.watch(lambda e: setattr(s, "show_frozen", bool(e.new)), "value")
        a.param.watch(lambda *_: self._refresh(), "last_update_s")
        self._refresh()

    def _choice(self, e):
        msgs = self.app.state.request_map(e.new)
        if msgs:
            self.app.notify(msgs)
            self.choice.value = self.app.state.fourth or self.app.maps.maps[-1].name

    def _refresh(self) -> None:
        f = self.app.fields
        note = no_ascat_note(f) if f is not None else ""
        self.note.object = (f"**No ASCAT for this period** ({as_markdown(note)}): the fill "
                            "rests on AMSR and the model alone." if note else "")

    def __panel__(self):
        return pn.Column(pn.Row(self.choice, self.frozen, self.note), self.help)
