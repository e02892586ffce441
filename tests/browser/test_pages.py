"""The app in a real browser: Debian chromium driven by pytest-playwright.

One ``panel serve app`` subprocess on a free 127.0.0.1 port serves a small demo world built
for the session (``GAPFILL_DEMO``), a stand-in checkpoint (``GAPFILL_CHECKPOINTS``) and an
empty inference cache (``GAPFILL_CACHE``), so nothing here depends on the full world, the
shipped model or the user's cache.
"""

from __future__ import annotations

import re

import pytest

from bench.serving import REPO, SMALL_DATE, free_port, serve, stop
from tests.browser.conftest import (
    ARTIFACTS,
    MAP_PREFIXES,
    colours,
    figures,
    map_pixels,
    maps_of,
    open_app,
    wait_for,
    world_path,
)


def test_page_loads_four_canvas_maps_without_console_errors(server, page):
    errors = open_app(page, server["url"], f"?date={SMALL_DATE}")
    page.wait_for_timeout(1000)
    maps = maps_of(figures(page))
    assert [m["title"].split()[0] for m in maps] == ["Raw", "ConvLSTM", "ASCAT", "Filled"]
    assert all(m["backend"] == "canvas" for m in maps)
    raw, filled, ascat, diff = (colours(page, m) for m in maps)
    assert raw > 40 and ascat > 40, (raw, ascat)  # fields drawn, not blank
    assert "2015-06-01" in maps[0]["title"] and "gaps" in maps[0]["title"]
    assert errors == []


def test_changing_the_date_updates_the_maps_in_place(server, page):
    open_app(page, server["url"], f"?date={SMALL_DATE}")
    page.wait_for_timeout(500)
    before = maps_of(figures(page))
    shot = map_pixels(page, before[0])
    page.get_by_role("button", name="next day ▶").click()
    after = wait_for(page, lambda figs: any("2015-06-02" in m["title"] for m in maps_of(figs)),
                     "the next day's titles")
    page.wait_for_timeout(500)
    assert map_pixels(page, maps_of(after)[0]) != shot
    page.wait_for_url(re.compile("date=2015-06-02"), timeout=15_000)  # state in the URL


def test_clicking_a_station_shows_series_and_statistics(server, page):
    from data_catalog.demo import open_demo_stations

    open_app(page, server["url"], f"?date={SMALL_DATE}")
    table, _ = open_demo_stations(world_path(server))
    st = table.iloc[0]
    raw = maps_of(figures(page, float(st["lon"]), float(st["lat"])))[0]
    page.mouse.click(raw["px"], raw["py"])
    page.get_by_text(f"Station {st['id']}").first.wait_for(timeout=30_000)
    stats = page.locator(".station-stats")
    stats.get_by_text("raw", exact=True).first.wait_for(timeout=30_000)
    assert stats.get_by_text("ascat", exact=True).count() >= 1
    page.wait_for_url(re.compile(f"station={st['id']}"), timeout=15_000)
    series = [f for f in figures(page) if not f["title"].startswith(MAP_PREFIXES)]
    assert series and colours(page, series[0]) > 20


WATCH_PROGRESS = """() => {
  const find = (root) => {
    const hit = root.querySelector('.inference-progress');
    if (hit) return hit;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const h = find(el.shadowRoot); if (h) return h; }
    }
    return null;
  };
  window.__progressSeen = false;
  const tick = () => {
    const el = find(document);
    if (el) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden') {
        window.__progressSeen = true;
        return;
      }
    }
    setTimeout(tick, 5);
  };
  tick();
}"""


def test_run_inference_shows_progress_then_the_filled_map(server, page):
    open_app(page, server["url"], "?date=2015-07-15")
    filled = maps_of(figures(page))[1]
    assert "no output yet" in filled["title"]
    # A fast inference can show and hide the progress bar between two of playwright's polls,
    # so a poller inside the page (piercing Bokeh's shadow roots) records whether it was seen.
    page.evaluate(WATCH_PROGRESS)
    page.get_by_role("button", name="Run inference").click()
    wait_for(page, lambda figs: "no output yet" not in maps_of(figs)[1]["title"],
             "the filled map", timeout=120)
    assert page.evaluate("() => window.__progressSeen"), "no progress bar while inferring"
    page.get_by_text("computed on CPU").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    assert colours(page, maps_of(figures(page))[1]) > 40


def test_bad_url_parameter_gives_a_notification(server, page):
    errors = open_app(page, server["url"], "?date=1999-99-99&region=a,b")
    note = page.get_by_text("URL parameter date=").first
    note.wait_for(timeout=30_000)
    assert page.get_by_text("URL parameter region=").count() >= 1
    assert errors == []
    assert "Traceback" not in page.content()


def test_cached_output_with_a_station_and_the_screenshot(server, page):
    """After the inference test the day is cached: it loads with the badge; the page with
    a station selected is saved as the screenshot artifact."""
    from data_catalog.demo import open_demo_stations

    table, _ = open_demo_stations(world_path(server))
    sid = str(table.iloc[1]["id"])
    errors = open_app(page, server["url"], f"?date=2015-07-15&station={sid}")
    page.locator(".badge-cached").first.wait_for(timeout=30_000)
    assert "no output yet" not in maps_of(figures(page))[1]["title"]
    page.get_by_text(f"Station {sid}").first.wait_for(timeout=30_000)
    page.locator(".station-stats").get_by_text("filled", exact=True).first.wait_for(
        timeout=60_000)
    page.wait_for_timeout(1500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    assert (ARTIFACTS / "app.png").stat().st_size > 50_000
    assert errors == []


@pytest.mark.slow
def test_readme_screenshot_on_the_demo_world(page, tmp_path):
    """The README screenshot: the real demo world and the shipped model, a station picked
    after running inference (skipped until both are built)."""
    world = REPO / "data" / "demo" / "world.zarr"
    model = REPO / "model" / "checkpoints" / "amsr2.pt"
    if not (world.exists() and model.exists()):
        pytest.skip("demo world or shipped checkpoint not built yet (make demo / gapfill train)")
    from data_catalog.demo import open_demo_stations

    sid = str(open_demo_stations(world)[0].iloc[2]["id"])
    port = free_port()
    proc = serve({"GAPFILL_DEMO": str(world), "GAPFILL_CACHE": str(tmp_path / "cache"),
                  "GAPFILL_CHECKPOINTS": str(model.parent)}, port, tmp_path / "server.log")
    try:
        errors = open_app(page, f"http://127.0.0.1:{port}/app",
                          f"?date=2016-07-15&station={sid}")
        page.get_by_role("button", name="Run inference").click()
        wait_for(page, lambda figs: "no output yet" not in maps_of(figs)[1]["title"],
                 "the filled map", timeout=240)
        stats = page.locator(".station-stats")
        stats.get_by_text("filled_gaps", exact=True).first.wait_for(timeout=60_000)
        # the filled series at the station is streamed by the model in the worker
        for _ in range(120):
            if page.get_by_text("computing the filled series").count() == 0:
                break
            page.wait_for_timeout(1000)
        page.wait_for_timeout(2000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app-demo.png"), full_page=True)
        assert errors == []
    finally:
        stop(proc)
