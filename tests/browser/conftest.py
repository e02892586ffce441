"""The app in a real browser: Debian chromium driven by pytest-playwright.

One ``panel serve app`` subprocess on a free 127.0.0.1 port (one for the whole session)
serves a small demo world built for the session (``GAPFILL_DEMO``), a stand-in checkpoint
(``GAPFILL_CHECKPOINTS``) and an empty inference cache (``GAPFILL_CACHE``), so nothing here
depends on the full world, the shipped model or the user's cache.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from bench.serving import (
    REPO,
    build_small_world,
    free_port,
    serve,
    stop,
    write_standin_checkpoint,
    write_standin_errors,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"


def pytest_collection_modifyitems(config, items):
    """Every test in this folder is a browser test, skipped where chromium is missing."""
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="Debian chromium not installed (apt-get install "
                            "chromium; .ci/run does it)")
    for item in items:
        if Path(item.fspath).parent == here:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


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

MAP_PREFIXES = ("Raw", "ConvLSTM", "ASCAT", "Filled −", "Uncertainty")


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


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("app-browser")
    world = build_small_world(root / "world.zarr")
    ckpts = root / "checkpoints"
    write_standin_checkpoint(ckpts)
    write_standin_errors(ckpts)  # outputs carry filled_sm_uncertainty: ± SD, band, map
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
    # the first page of a session builds it on the server (about 15 s on the full demo world
    # with a station); on a loaded 2-core machine that passes playwright's default 30 s
    page.goto(url + query, timeout=90_000)
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


def world_path(server) -> Path:
    # the world was built beside the server log by the session fixture
    return Path(server["log"]).parent / "world.zarr"
