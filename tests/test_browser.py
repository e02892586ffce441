"""The app in a real browser: Debian chromium driven by pytest-playwright.

One ``panel serve app`` subprocess on a free 127.0.0.1 port serves a small demo world built
for the session (``GAPFILL_DEMO``), a stand-in checkpoint (``GAPFILL_CHECKPOINTS``) and an
empty inference cache (``GAPFILL_CACHE``), so nothing here depends on the full world, the
shipped model or the user's cache.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from bench.serving import (
    REPO,
    SMALL_DATE,
    build_small_world,
    free_port,
    serve,
    stop,
    write_standin_checkpoint,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed "
                       "(apt-get install chromium; .ci/run does it)"),
]

#: figure views of the page: title, canvas box and the screen position of a lon/lat
FIGURES_JS = """
([lon, lat]) => {
  const views = [];
  const visit = (v) => { if (!v) return; views.push(v);
                         if (v.child_views) for (const c of v.child_views) visit(c); };
  for (const r of Object.values(Bokeh.index)) visit(r);
  const figs = [];
  for (const v of views) {
    if (v.model && v.model.type === 'Figure' && v.frame) {
      const r = v.canvas_view.el.getBoundingClientRect();
      figs.push({title: v.model.title ? v.model.title.text : '', left: r.left, top: r.top,
                 width: r.width, height: r.height, backend: v.model.output_backend,
                 px: r.left + v.frame.x_scale.compute(lon),
                 py: r.top + v.frame.y_scale.compute(lat)});
    }
  }
  return figs;
}
"""

MAP_PREFIXES = ("Raw", "ConvLSTM", "ASCAT", "Filled −")


@pytest.fixture(scope="session")
def base_url():
    """No base URL: overrides pytest-base-url's fixture, a class-bound session fixture that
    pytest 9 warns about (warnings are errors here); the tests pass full URLs."""
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian chromium, headless, no sandbox, nothing phoning home."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("app-browser")
    world = build_small_world(root / "world.zarr")
    ckpts = root / "checkpoints"
    write_standin_checkpoint(ckpts)
    port = free_port()
    env = {"GAPFILL_DEMO": str(world), "GAPFILL_CHECKPOINTS": str(ckpts),
           "GAPFILL_CACHE": str(root / "cache"), "BOKEH_LOG_LEVEL": "info"}
    proc = serve(env, port, root / "server.log")
    yield {"url": f"http://127.0.0.1:{port}/app", "log": root / "server.log"}
    stop(proc)
    log = (root / "server.log").read_text()
    assert "unhandled error in a callback" not in log, log[-3000:]


def open_app(page, url: str, query: str = ""):
    """Load the page, collecting console errors; wait for the four maps."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": 1500, "height": 1500})
    page.goto(url + query)
    page.wait_for_function(
        "() => window.Bokeh && Object.keys(Bokeh.index).length > 0", timeout=90_000)
    wait_for(page, lambda figs: len(maps_of(figs)) == 4, "four maps")
    return errors


def figures(page, lon: float = 0.0, lat: float = 0.0) -> list[dict]:
    return page.evaluate(FIGURES_JS, [lon, lat])


def maps_of(figs: list[dict]) -> list[dict]:
    return [f for f in figs if f["title"].startswith(MAP_PREFIXES)]


def wait_for(page, cond, what: str, timeout: float = 60.0, **kw):
    t0 = time.time()
    while time.time() - t0 < timeout:
        figs = figures(page, **kw)
        if cond(figs):
            return figs
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out waiting for {what}: {[f['title'] for f in figs]}")


def colours(page, fig: dict) -> int:
    """Distinct colours drawn in a figure's canvas (a blank plot has a handful)."""
    from PIL import Image

    png = page.screenshot(clip={"x": fig["left"], "y": fig["top"], "width": fig["width"],
                                "height": fig["height"]})
    img = Image.open(io.BytesIO(png)).convert("RGB")
    return len(img.getcolors(maxcolors=1 << 20) or [])


def map_pixels(page, fig: dict) -> bytes:
    png = page.screenshot(clip={"x": fig["left"] + 40, "y": fig["top"] + 30,
                                "width": fig["width"] - 120, "height": fig["height"] - 80})
    return png


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
    table, _ = open_demo_stations(_world_path(server))
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

    table, _ = open_demo_stations(_world_path(server))
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


def _world_path(server) -> Path:
    # the world was built beside the server log by the module fixture
    return Path(server["log"]).parent / "world.zarr"


def test_readme_screenshot_is_a_png():
    # docs/screenshot.png is copied from a good run's test-artifacts/app-demo.png (README)
    shot = REPO / "docs" / "screenshot.png"
    if not shot.exists():
        pytest.skip("no docs/screenshot.png yet")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
