"""The fourth map as a selector, the hover's ± SD, the series' 1-SD band and the frozen
toggle (issues 12, 13, 14, 16), in a real browser on the session's small demo world."""

from __future__ import annotations

import re
from urllib.parse import unquote

from tests.browser.conftest import figures, map_pixels, maps_of, open_app, wait_for

#: a spring day of the small world with frozen-ground gaps (25 cells)
FROZEN_DAY = "2015-04-02"

#: the Bokeh models of the page: the hovers' code and detail sources, the legend labels
MODELS_JS = """() => {
  const out = {hovers: [], legends: [], marks: 0};
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (m.type === 'CustomJSHover' && m.code.includes('±')) {
      const src = m.args.get ? m.args.get('src') : m.args.src;
      const d = src ? src.data : null;
      out.hovers.push(d ? (d.get ? d.get('code') : d.code)[0].length : -1);
      // the hover's own code, run as Bokeh runs it, on the selected pixel
      const run = new Function('src', 'value', 'format', 'special_vars', m.code);
      out.text = run(src, 0.25, null, {x: -95.125, y: 33.125});
    }
    if (m.type === 'LegendItem' && m.label && m.label.value) out.legends.push(m.label.value);
    if (m.type === 'ColumnDataSource') {  // the selected-pixel marker of a map
      const get = (k) => m.data.get ? m.data.get(k) : m.data[k];
      const lon = get('lon'), lat = get('lat');
      if (lon && lat && lon.length === 1 && lon[0] === -95.125 && lat[0] === 33.125 &&
          !get('image')) out.marks += 1;
    }
  }
  return out;
}"""


def _fourth(page) -> str:
    return maps_of(figures(page))[3]["title"]


def test_the_map_selector_switches_the_fourth_map_and_survives_a_reload(server, page):
    errors = open_app(page, server["url"], "?date=2015-06-05")
    assert _fourth(page).startswith("Filled − truth (demo)")  # the demo's default
    page.locator(".map-choice select").select_option(label="Filled − ASCAT (matched to AMSR)")
    wait_for(page, lambda figs: maps_of(figs)[3]["title"].startswith("Filled − ASCAT"),
             "the Filled − ASCAT map")
    page.wait_for_url(re.compile("map=minus_ascat"), timeout=15_000)
    page.reload()
    wait_for(page, lambda figs: len(maps_of(figs)) == 4 and
             maps_of(figs)[3]["title"].startswith("Filled − ASCAT"), "the choice reloaded")
    assert errors == []


def test_hover_band_and_frozen_toggle_on_a_filled_day(server, page):
    errors = open_app(page, server["url"], f"?date={FROZEN_DAY}&pixel=33.125,-95.125")
    page.get_by_role("button", name="Run inference").click()
    wait_for(page, lambda figs: "no output yet" not in maps_of(figs)[1]["title"],
             "the filled map", timeout=120)
    # the hover of the filled map reads value ± SD and the reasons from its detail source
    # (asserted on the page's Bokeh models: a real mouse hover over a canvas is flaky on a
    # loaded machine), which holds the day's codes once the fill is shown
    page.wait_for_function(f"() => ({MODELS_JS})().hovers.some(n => n > 0)",
                           timeout=30_000)
    text = page.evaluate(MODELS_JS)["text"]
    assert re.match(r"0\.250 ± 0\.0\d\d m3 m-3 · (filled: |observed)", text), text
    # the selected pixel is marked on each of the four maps
    page.wait_for_function(f"() => ({MODELS_JS})().marks >= 4", timeout=30_000)
    # the pixel's series shows the filled value with its 1-SD band, named in the legend
    page.wait_for_function(
        f"() => ({MODELS_JS})().legends.includes('Filled ± 1 SD')", timeout=60_000)
    # fills under frozen ground are hidden by default; the toggle draws them
    filled = maps_of(figures(page))[1]
    before = map_pixels(page, filled)
    box = page.locator(".show-frozen input[type=checkbox]")
    assert not box.is_checked()
    box.check()
    page.wait_for_url(re.compile("frozen=1"), timeout=15_000)
    t0 = page.evaluate("() => performance.now()")
    while map_pixels(page, maps_of(figures(page))[1]) == before:
        assert page.evaluate("() => performance.now()") - t0 < 30_000, "map unchanged"
        page.wait_for_timeout(250)
    assert "frozen=1" in unquote(page.url)
    assert errors == []
