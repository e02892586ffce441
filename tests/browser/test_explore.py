"""Exploring as a scientist does (issue 16): drawing a region, the state in the URL, help,
exports, in a real browser on the session's small demo world."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from bench.serving import SMALL_DATE
from tests.browser.conftest import ARTIFACTS, figures, maps_of, open_app, wait_for

#: records whether the maps pane showed Panel's loading indicator (a poller inside the page,
#: piercing Bokeh's shadow roots: a short rebuild can come and go between playwright polls)
WATCH_LOADING = """() => {
  const loading = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('pn-loading') &&
          el.classList.contains('maps')) return true;
      if (el.shadowRoot && loading(el.shadowRoot)) return true;
    }
    return false;
  };
  window.__loading = loading;
  window.__loadingSeen = false;
  const tick = () => { if (loading(document)) { window.__loadingSeen = true; return; }
                       setTimeout(tick, 5); };
  tick();
}"""


#: resolves once the page is ready for a drag: BokehJS's document idle (every view rendered;
#: it is what sends DocumentReady to the server) and then the raw map's canvas in the same
#: place for 10 animation frames in a row (nothing above it still changing the layout)
SETTLED = """async () => {
  const doc = Bokeh.documents[0];
  if (!doc.is_idle) await new Promise((ok) => doc.idle.connect(() => ok()));
  const raw = () => {
    const views = [];
    const visit = (v) => { if (!v) return; views.push(v);
                           if (v.child_views) for (const c of v.child_views) visit(c); };
    for (const r of Object.values(Bokeh.index)) visit(r);
    const v = views.find((v) => v.model && v.model.type === 'Figure' && v.model.title &&
                                /^Raw/.test(v.model.title.text));
    const r = v.canvas_view.el.getBoundingClientRect();
    return [r.left, r.top, r.width, r.height].join();
  };
  let last = raw(), same = 0;
  while (same < 10) {
    await new Promise((ok) => requestAnimationFrame(() => ok()));
    const now = raw();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}"""


def _drag(page, a: dict, b: dict) -> None:
    page.mouse.move(a["px"], a["py"])
    page.mouse.down()
    page.mouse.move(b["px"], b["py"], steps=10)
    page.mouse.up()


def test_drawing_a_box_on_the_raw_map_sets_the_region(server, page):
    errors = open_app(page, server["url"], f"?date={SMALL_DATE}")
    page.evaluate(SETTLED)
    a = maps_of(figures(page, -97.0, 35.0))[0]
    b = maps_of(figures(page, -94.0, 32.0))[0]
    page.evaluate(WATCH_LOADING)
    _drag(page, a, b)  # box-select is the raw map's drag: no toolbar click needed
    # the box was drawn where it was aimed: the map had not moved (unless already rebuilt)
    after = maps_of(figures(page, -97.0, 35.0))[0]
    box = ("left", "top", "width", "height", "px", "py")
    assert after["title"] != a["title"] or [after[k] for k in box] == [a[k] for k in box], \
        (a, after)
    page.wait_for_url(re.compile(r"region=-97(,|%2C)32(,|%2C)-94(,|%2C)35"), timeout=30_000)
    # the maps are rebuilt on the drawn region: its 3 degrees span most of the raw map
    # (a third of it before, on the world's 10 degrees)

    def spans(figs):
        east = maps_of(figures(page, -94.0, 32.0))[0]
        return east["px"] - maps_of(figs)[0]["px"] > 0.6 * east["width"]

    wait_for(page, spans, "maps on the drawn region", lon=-97.0, lat=35.0)
    # the loading indicator came while the maps were replaced, and went
    assert page.evaluate("() => window.__loadingSeen"), "no loading indicator"
    page.wait_for_function("() => !window.__loading(document)", timeout=30_000)
    assert errors == []


def test_a_url_with_every_state_parameter_restores_it(server, page):
    query = ("?date=2015-06-02&preset=southern_plains&mask=0&clim=0.05,0.45"
             "&pixel=34.125,-95.125&window=180&map=uncertainty&frozen=1")
    errors = open_app(page, server["url"], query)
    assert maps_of(figures(page))[3]["title"].startswith("Uncertainty (1 SD)")
    page.get_by_text("Pixel 34.125°N -95.125°E").first.wait_for(timeout=60_000)
    # the app rewrites the URL from its state on the next change: every parameter is kept
    page.get_by_role("button", name="next day ▶").click()
    page.wait_for_url(re.compile("date=2015-06-03"), timeout=30_000)
    url = unquote(page.url)
    for part in ("preset=southern_plains", "mask=0", "clim=0.05,0.45",
                 "pixel=34.125,-95.125", "window=180", "map=uncertainty", "frozen=1"):
        assert part in url, (part, url)
    assert page.locator(".auto-fill").count() == 1
    assert errors == []


def test_the_about_panel_opens(server, page):
    open_app(page, server["url"], f"?date={SMALL_DATE}")
    page.get_by_text("About", exact=True).first.click()
    page.get_by_text("transfer-learned to AMSR-E").first.wait_for(timeout=30_000)
    assert page.get_by_text("No AMSR in orbit", exact=False).count() >= 0


def test_exports_download_named_files_with_their_contents(server, page, tmp_path):
    import pandas as pd
    import xarray as xr

    open_app(page, server["url"], "?date=2015-06-10&pixel=34.125,-95.125")
    page.get_by_text("Pixel 34.125°N -95.125°E").first.wait_for(timeout=60_000)
    with page.expect_download(timeout=60_000) as got:
        page.locator(".export-series").get_by_text("Export series (CSV)").click()
    csv = tmp_path / got.value.suggested_filename
    got.value.save_as(csv)
    assert csv.name == "gapfill_pixel-34.125_-95.125_2015-06-10_series.csv"
    text = csv.read_text()
    assert "# source: demo" in text and "# window: " in text
    frame = pd.read_csv(csv, comment="#", index_col="date", parse_dates=True)
    assert pd.Timestamp("2015-06-10") in frame.index and "raw" in frame
    # the shown day is filled by the June period fill (test_fill.py) or now
    if page.get_by_role("button", name="Run inference").is_visible():
        page.get_by_role("button", name="Run inference").click()
    wait_for(page, lambda figs: "no output yet" not in maps_of(figs)[1]["title"],
             "the filled map", timeout=180)
    with page.expect_download(timeout=60_000) as got:
        page.locator(".export-nc").get_by_text("Export filled (netCDF)").click()
    nc = tmp_path / got.value.suggested_filename
    got.value.save_as(nc)
    assert nc.name.startswith("gapfill_demo_") and nc.name.endswith("_filled.nc")
    with xr.open_dataset(nc) as ds:
        assert ds.attrs["Conventions"] == "CF-1.10" and ds["filled_sm"].attrs["units"]
        assert pd.Timestamp("2015-06-10") in ds.indexes["time"]
        assert float(ds["filled_sm"].notnull().mean()) > 0.3
    with page.expect_download(timeout=60_000) as got:
        page.locator(".maps").first.page.get_by_text("Export maps (PNG)").click()
    png = tmp_path / got.value.suggested_filename
    got.value.save_as(png)
    assert png.name.endswith("_2015-06-10.png") and png.read_bytes()[:4] == b"\x89PNG"


def test_each_real_catalog_source_opens_with_its_title_and_a_plain_sentence(server, page,
                                                                           shared_data):
    """The catalog's real products: no error notification, their own title and units,
    and a plain sentence instead of a model run that does not fit them."""
    from app.data import DataHub

    hub = DataHub(readahead=0)
    real = [s for s in hub.sources() if s != "demo"]
    if not real:
        pytest.skip("no real gridded source available in the catalog")
    for name in real:
        label = hub.source_metadata(name).get("label", name)
        errors = open_app(page, server["url"], f"?source={name}")
        raw = maps_of(figures(page))[0]
        assert raw["title"].startswith(f"Raw {label}"), raw["title"]
        page.get_by_text("Assemble it into a world").first.wait_for(timeout=30_000)
        assert page.locator(".notyf__toast--error").count() == 0
        assert errors == []
        # the README's screenshot of a real source (copied to docs/ by hand, see README)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"app-{name}.png"), full_page=True)
    hub.close()


def test_a_typed_date_moves_the_maps_and_a_bad_one_says_why(server, page):
    errors = open_app(page, server["url"], f"?date={SMALL_DATE}")
    box = page.locator(".typed-date input")
    box.fill("2015-04-01")
    box.press("Enter")
    wait_for(page, lambda figs: all("2015-04-01" in m["title"] for m in maps_of(figs)),
             "the typed day's maps")
    page.wait_for_url(re.compile("date=2015-04-01"), timeout=30_000)
    box.fill("2015-02-30")  # no such day: one message, the day shown is kept
    box.press("Enter")
    page.get_by_text("Typed date '2015-02-30' is not a calendar day").first.wait_for(
        timeout=30_000)
    assert all("2015-04-01" in m["title"] for m in maps_of(figures(page)))
    assert box.input_value() == "2015-02-30"  # the typed text stays, to be corrected
    assert errors == []
