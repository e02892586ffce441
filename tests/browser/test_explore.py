"""Exploring as a scientist does (issue 16): drawing a region, the state in the URL, help,
exports, in a real browser on the session's small demo world."""

from __future__ import annotations

import re

from bench.serving import SMALL_DATE
from tests.browser.conftest import figures, maps_of, open_app, wait_for


def _drag(page, a: dict, b: dict) -> None:
    page.mouse.move(a["px"], a["py"])
    page.mouse.down()
    page.mouse.move(b["px"], b["py"], steps=10)
    page.mouse.up()


def test_drawing_a_box_on_the_raw_map_sets_the_region(server, page):
    errors = open_app(page, server["url"], f"?date={SMALL_DATE}")
    a = maps_of(figures(page, -97.0, 35.0))[0]
    b = maps_of(figures(page, -94.0, 32.0))[0]
    _drag(page, a, b)  # box-select is the raw map's drag: no toolbar click needed
    page.wait_for_url(re.compile(r"region=-97,32,-94,35"), timeout=60_000)
    # the maps are rebuilt on the drawn region: its 3 degrees span most of the raw map
    # (a third of it before, on the world's 10 degrees)

    def spans(figs):
        east = maps_of(figures(page, -94.0, 32.0))[0]
        return east["px"] - maps_of(figs)[0]["px"] > 0.6 * east["width"]

    wait_for(page, spans, "maps on the drawn region", lon=-97.0, lat=35.0)
    assert errors == []
