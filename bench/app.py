"""Date-change latency of the explorer in a real browser (``python -m bench.app --json``).

What it measures, per region (the 64 x 64 demo region and a 0.25 degree 250 x 350 region):

* the app: ``panel serve app`` in a subprocess on 127.0.0.1, Debian chromium (headless,
  via playwright) showing the four maps; every step clicks *next day* and times, inside the
  page, from the click to the animation frame after each of the four maps has repainted
  (BokehJS's ``repainted`` signal) with the new day in its title (the titles and the images
  travel in one document patch; each map's image data is checked to have changed too).
  All days are served from the inference cache, filled beforehand.
* what a user would do instead: the same four panels for one day with matplotlib +
  cartopy (``xarray .plot.imshow`` on four ``GeoAxes`` with 50m coastlines, saved to PNG),
  median of repeated runs after a warm-up.

The world is a small synthetic demo world built for the run (one 250 x 350 grid that
contains the demo region, a few weeks long) and the model a tiny stand-in checkpoint:
the benchmark times the app, not the model.  Server and browser share this machine's cores.

JSON: ``{"regions": {NAME: {"cells", "p50_s", "p95_s", "matplotlib_s",
"speedup_vs_matplotlib"}}, "fill_this_period_month": {"fill_s", "to_browsable_s", ...},
...}``.  Targets: p50 at least 1.5 x faster than matplotlib, p95 under 0.3 s.  The fill
time is "Fill this period" on the month of :data:`FILL_DAY` over the 64 x 64 region (the
stand-in checkpoint streamed on CPU), until the month is browsable.

``--quick`` runs the same steps on a 16 x 16 cell world of three weeks, one region, three
date changes and one matplotlib repeat, to check that the benchmark still runs (a test
does); its figures say nothing about the targets.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.serving import free_port, prepare_workdir, serve, stop

log = logging.getLogger("bench.app")

WORLD = dict(west=-125.0, south=5.0, east=-37.5, north=67.5, start="2015-05-15",
             end="2015-08-31", n_stations=24, seed=42)
#: "Fill this period" is timed on the month of this day (never in the inference cache)
FILL_DAY = "2015-08-15"
QUICK_FILL_DAY = "2015-05-28"
REGIONS = {
    "demo_64x64": (-100.0, 30.0, -84.0, 46.0),
    "continent_250x350": (WORLD["west"], WORLD["south"], WORLD["east"], WORLD["north"]),
}
START = "2015-06-01"
#: --quick: a small world, one region, a few steps
QUICK_WORLD = dict(west=-100.0, south=30.0, east=-96.0, north=34.0, start="2015-05-25",
                   end="2015-06-15", n_stations=4, seed=42)
QUICK_REGIONS = {"quick_16x16": (-100.0, 30.0, -96.0, 34.0)}
QUICK_STEPS = 3
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

#: click the button whose label contains ``label`` ("next day" unless given) and resolve
#: with the seconds until each of the four maps has repainted showing ``day`` in its title
#: (BokehJS's ``repainted`` signal of the plot view), plus the next animation frame (the
#: one that presents those canvases)
STEP_JS = """
async ([day, label]) => {
  const views = [];
  const visit = (v) => { if (!v) return; views.push(v);
                         if (v.child_views) for (const c of v.child_views) visit(c); };
  for (const r of Object.values(Bokeh.index)) visit(r);
  const maps = views.filter(v => v.model && v.model.type === 'Figure' && v.model.title &&
      /^(Raw|ConvLSTM|ASCAT|Filled −)/.test(v.model.title.text));
  const images = (v) => {
    const out = [];
    for (const r of v.model.renderers) {
      const d = r.data_source && r.data_source.data && r.data_source.data.image;
      if (d && d.length) out.push(d[0]);
    }
    return out;
  };
  const before = maps.map(images);
  const painted = maps.map(() => false);
  const slots = maps.map((v, i) => {
    const slot = () => { if (v.model.title.text.includes(day)) painted[i] = true; };
    v.repainted.connect(slot);
    return slot;
  });
  const buttons = [];
  const find = (root) => { for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'BUTTON') buttons.push(el);
      if (el.shadowRoot) find(el.shadowRoot); } };
  find(document);
  const next = buttons.find(b => b.textContent.includes(label || 'next day'));
  const t0 = performance.now();
  next.click();
  const frame = () => new Promise(r => requestAnimationFrame(r));
  let error = null;
  while (!painted.every(p => p)) {
    await frame();
    if (performance.now() - t0 > 20000) {
      error = {error: 'timeout', titles: maps.map(v => v.model.title.text), painted};
      break;
    }
  }
  maps.forEach((v, i) => v.repainted.disconnect(slots[i]));
  if (error) return error;
  await frame();
  const dt = (performance.now() - t0) / 1000;
  // every map shows a new image (its first image layer: the field itself)
  const changed = maps.map((v, i) => images(v)[0] !== before[i][0]);
  return {seconds: dt, changed: changed.every(c => c), changed_maps: changed};
}
"""

WAIT_JS = """
() => { if (!window.Bokeh) return 0; const views = [];
  const visit = (v) => { if (!v) return; views.push(v);
                         if (v.child_views) for (const c of v.child_views) visit(c); };
  for (const r of Object.values(Bokeh.index)) visit(r);
  return views.filter(v => v.model && v.model.type === 'Figure' && v.model.title &&
      /^(Raw|ConvLSTM|ASCAT|Filled −)/.test(v.model.title.text)).length; }
"""


def fill_cache(world: Path, ckpts: Path, cache: Path, region, days) -> None:
    """Run the (stand-in) model for every day through the app's own hub and cache."""
    os.environ.update({"GAPFILL_DEMO": str(world), "GAPFILL_CHECKPOINTS": str(ckpts),
                       "GAPFILL_CACHE": str(cache)})
    from app.data import DataHub
    from app.state import GridInfo, validate_region

    hub = DataHub(readahead=0)
    grid = GridInfo.from_dataset(hub.world("demo"))
    box, _ = validate_region(region, grid)
    for d in days:
        hub.run_inference("demo", box, d).result()
    hub.close()


def matplotlib_seconds(world: Path, region, day, repeats: int = 5) -> float:
    """Median seconds to draw the four panels with matplotlib + cartopy and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import cartopy.crs as ccrs
    import matplotlib.pyplot as plt

    from data_catalog.geo import configure_cartopy_offline
    from data_catalog.worlds import open_world

    configure_cartopy_offline()
    w, s, e, n = region
    ds = open_world(world).sel(lat=slice(s, n), lon=slice(w, e)).sel(time=day).load()
    filled = ds["truth_sm"]  # stands in for the model output: same shape, same cost
    panels = [(ds["amsr_sm"], "YlGnBu", (0, 0.5)), (filled, "YlGnBu", (0, 0.5)),
              (ds["ascat_sm"], "viridis", (0, 100)),
              (filled - ds["truth_sm"], "RdBu_r", (-0.1, 0.1))]
    times = []
    out = Path(tempfile.mkdtemp()) / "maps.png"
    for k in range(repeats + 1):
        t0 = time.perf_counter()
        fig, axes = plt.subplots(2, 2, figsize=(12, 9),
                                 subplot_kw={"projection": ccrs.PlateCarree()})
        for ax, (da, cmap, lim) in zip(axes.flat, panels, strict=True):
            da.plot.imshow(ax=ax, transform=ccrs.PlateCarree(), cmap=cmap, vmin=lim[0],
                           vmax=lim[1])
            ax.coastlines("50m")
        fig.savefig(out, dpi=100)
        plt.close(fig)
        if k:  # the first run warms caches (shapefile reading, fonts)
            times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


def browser_steps(url: str, start: str, steps: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1500, "height": 1400})
        page.goto(url, timeout=180_000)  # a loaded machine: the first page is slow
        page.wait_for_function(f"({WAIT_JS})() === 4", timeout=120_000)
        page.wait_for_timeout(3000)  # let read-ahead and first paints settle
        day = pd.Timestamp(start)
        for k in range(steps + 2):
            day += pd.Timedelta(days=1)
            r = page.evaluate(STEP_JS, [f"{day:%Y-%m-%d}"])
            if "error" in r:
                raise RuntimeError(f"step to {day:%Y-%m-%d}: {r}")
            if not r["changed"]:
                raise RuntimeError(f"step to {day:%Y-%m-%d}: image unchanged on some map "
                                   f"(raw, filled, ascat, diff): {r['changed_maps']}")
            if k >= 2:  # two warm-up steps
                out.append(r["seconds"])
            page.wait_for_timeout(150)
        b.close()
    return out


#: the titles of the four maps
TITLES_JS = WAIT_JS.replace(".length; }", ".map(v => v.model.title.text); }")


def fill_month_seconds(url: str, timeout_s: float = 600.0) -> dict:
    """Seconds from clicking "Fill this period" (the shown month, the default) to the
    month being browsable: the fill status says it is done and the next day's filled map
    shows it, painted (the same repaint check as a date step)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1500, "height": 1400})
        page.goto(url, timeout=180_000)  # a loaded machine: the first page is slow
        page.wait_for_function(f"({WAIT_JS})() === 4", timeout=120_000)
        page.wait_for_timeout(2000)
        t0 = time.perf_counter()
        page.get_by_role("button", name="Fill this period").click()
        done = page.locator(".fill-status").get_by_text("filled ").first
        done.wait_for(timeout=timeout_s * 1000)
        filled = time.perf_counter() - t0
        status = done.inner_text()
        day = pd.Timestamp(url.split("date=")[1][:10]) + pd.Timedelta(days=1)
        r = page.evaluate(STEP_JS, [f"{day:%Y-%m-%d}"])
        titles = page.evaluate(TITLES_JS)
        b.close()
    if "error" in r or not any("period fill" in t for t in titles):
        raise RuntimeError(f"the filled month is not browsable: {r} {titles}")
    return {"fill_s": round(filled, 2), "to_browsable_s": round(filled + r["seconds"], 2),
            "status": status.strip()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON only")
    ap.add_argument("--steps", type=int, default=30, help="date changes per region")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the world here")
    ap.add_argument("--quick", action="store_true",
                    help="a small world, one region, a few steps: checks that it runs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    regions = QUICK_REGIONS if args.quick else REGIONS
    if args.quick:
        args.steps = QUICK_STEPS
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-app-"))
    world, ckpts, cache = prepare_workdir(work, QUICK_WORLD if args.quick else WORLD)
    days = pd.date_range(START, periods=args.steps + 4)
    results = {}
    for region in regions.values():
        fill_cache(world, ckpts, cache, region, days)
    port = free_port()
    env = {"GAPFILL_DEMO": str(world), "GAPFILL_CHECKPOINTS": str(ckpts),
           "GAPFILL_CACHE": str(cache)}
    proc = serve(env, port, work / "server.log", timeout=300.0)  # loaded machines: slow
    try:
        for name, region in regions.items():
            reg = ",".join(f"{v:g}" for v in region)
            url = f"http://127.0.0.1:{port}/app?date={START}&region={reg}"
            secs = browser_steps(url, START, args.steps)
            mpl = matplotlib_seconds(world, region, START, repeats=1 if args.quick else 5)
            w, s, e, n = region
            cells = int(round((e - w) / 0.25) * round((n - s) / 0.25))
            p50 = float(np.percentile(secs, 50))
            results[name] = {"cells": cells, "shape": [int(round((n - s) / 0.25)),
                                                       int(round((e - w) / 0.25))],
                             "steps": len(secs), "p50_s": round(p50, 4),
                             "p95_s": round(float(np.percentile(secs, 95)), 4),
                             "matplotlib_s": round(mpl, 4),
                             "speedup_vs_matplotlib": round(mpl / p50, 2)}
        name, region = next(iter(regions.items()))
        reg = ",".join(f"{v:g}" for v in region)
        fill = fill_month_seconds(f"http://127.0.0.1:{port}/app?date="
                                  f"{QUICK_FILL_DAY if args.quick else FILL_DAY}&region={reg}")
        fill["region"] = name
    finally:
        stop(proc)
    out = {"regions": results, "fill_this_period_month": fill,
           "renderer": "bokeh canvas (webgl=False)",
           "date_update": "in place: datashader regrid written into the existing data sources",
           "served_from": "inference cache (stand-in checkpoint)",
           "machine": f"{os.cpu_count()} cores shared by server, chromium and other work",
           "quick": args.quick}
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
