"""Fills that stay while browsing: "Fill this period" and auto-fill in a real browser.

Each test uses its own month of the session's small world (the hub's memory of fills is
shared by all sessions of the server): June for the period fill, August for auto-fill
(test_pages.py runs inference on 2015-07-15 and needs it unfilled).
"""

from __future__ import annotations

from tests.browser.conftest import figures, maps_of, open_app, wait_for


def _filled_title(figs) -> str:
    return maps_of(figs)[1]["title"]


def test_a_filled_period_stays_filled_while_stepping(server, page):
    errors = open_app(page, server["url"], "?date=2015-06-03")
    assert "no output yet" in _filled_title(figures(page))
    page.get_by_role("button", name="Fill this period").click()
    # the shown day appears as soon as its block is done, marked with its origin
    wait_for(page, lambda figs: "from a period fill" in _filled_title(figs),
             "the filled map of the shown day", timeout=240)
    page.locator(".fill-status").get_by_text("filled 30 days").wait_for(timeout=240_000)
    for day in ("2015-06-04", "2015-06-05"):
        page.get_by_role("button", name="next day ▶").click()
        figs = wait_for(page, lambda figs, d=day: d in _filled_title(figs), f"the map of {day}")
        assert "from a period fill" in _filled_title(figs), _filled_title(figs)
    assert errors == []


def test_auto_fill_fills_a_new_day(server, page):
    errors = open_app(page, server["url"], "?date=2015-08-10")
    assert "no output yet" in _filled_title(figures(page))
    box = page.locator(".auto-fill input[type=checkbox]")  # Bokeh's label is not a <label>
    box.check()
    assert box.is_checked()
    wait_for(page, lambda figs: "auto-filled" in _filled_title(figs), "the auto-fill",
             timeout=180)
    page.get_by_role("button", name="next day ▶").click()
    wait_for(page, lambda figs: "2015-08-11" in _filled_title(figs)
             and "auto-filled" in _filled_title(figs), "the next day's auto-fill", timeout=180)
    assert errors == []
