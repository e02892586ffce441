"""Benchmark of the seamless series build and store: ``python -m bench.series --json``.

Measures, on the demo world (whole 64 x 64 region by default):

``pixel_days_per_s_1_worker`` / ``_2_workers``
    pixel-days of a 1-year build divided by the time its tiles took on a local Dask
    cluster of 1 or 2 worker processes, after the workers are up and prepared (imports,
    world opened, models loaded: that start-up is in ``details``); best of ``--repeats``
    alternating runs (the machine may be shared; every run is in ``details``).
``peak_rss_mb_1y`` / ``peak_rss_mb_4y`` / ``rss_ratio_4y_1y``
    peak resident memory of a 1-year and a 4-year build of the same region (1 worker),
    summed over the whole process tree (the CLI, the nanny and the worker), sampled every
    20 ms with psutil.  Streaming keeps the ratio near 1 (target <= 1.2).
``details.tiling_*_abs_diff_m3m3``
    the difference between the tiled 1-year build and the same build in one tile:
    the price of cutting the grid into tiles with halos.
``read_day_map_s`` / ``read_pixel_series_s``
    median time to read one day's ``filled_sm`` map and one pixel's 2003-2023 series
    from the 20-year store (opened once, lazily, as an app would).

Each build runs in a fresh subprocess (``gapfill build-series``) so the memory of one
does not leak into the next.  The shipped model is used when its checkpoints exist,
else the persistence baseline; the JSON says which under ``"model"``.

``--quick`` checks that the benchmark still runs (a test does): an 8 x 8 cell region in
4-cell tiles, one repeat, a month for the "1-year" builds and four months for the
"4-year" one, whose store also stands in for the 20-year store (no separate full build);
the one-tile reference build and the "4-year" build run without Dask (so the quick
memory ratio compares a process with a cluster: it checks the arithmetic only).  Its
figures say nothing about the targets.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from data_catalog import locations

logger = logging.getLogger("bench.series")

REPO = Path(__file__).resolve().parents[1]
#: the periods of the builds, and the tile size; --quick: small enough for a test
FULL = {"y1": ("2003-01-01", "2003-12-31"), "y4": ("2003-01-01", "2006-12-31"), "tile": 32}
QUICK = {"y1": ("2003-01-01", "2003-01-31"), "y4": ("2003-01-01", "2003-04-30"), "tile": 4,
         "region": "-100,30,-98,32", "repeats": 1}


def _shipped_available(checkpoint_dir: str | None = None) -> bool:
    d = Path(checkpoint_dir) if checkpoint_dir else locations.checkpoint_dir()
    return (d / "amsr2.pt").exists()


def _tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run_build(out: Path, start: str, end: str, *, workers: int, model: str,
              world: str | None, region: str | None, tile: int = 32,
              checkpoint_dir: str | None = None, scheduler: str | None = None) -> dict:
    """Run one build in a subprocess; return its timings and peak tree RSS.

    ``scheduler="synchronous"``: in the build's own process, without Dask."""
    import psutil

    stats_file = out.with_suffix(".stats.json")
    cmd = [sys.executable, "-m", "bench.series", "--_build", str(out), "--_stats",
           str(stats_file), "--_start", start, "--_end", end, "--_workers", str(workers),
           "--_model", model, "--_tile", str(tile)]
    if world:
        cmd += ["--world", world]
    if checkpoint_dir:
        cmd += ["--checkpoint-dir", checkpoint_dir]
    if region:
        cmd += [f"--region={region}"]
    if scheduler:
        cmd += ["--_scheduler", scheduler]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    worker_peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, worker_peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(ps))
            try:
                kids = ps.children(recursive=True)
            except psutil.NoSuchProcess:
                kids = []
            for k in kids:
                try:
                    worker_peak = max(worker_peak, k.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    stop.set()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"build {start}..{end} failed ({proc.returncode}): {err[-2000:]}")
    stats = json.loads(stats_file.read_text())
    stats.update(peak_rss_mb=peak / 2**20, max_child_rss_mb=worker_peak / 2**20,
                 subprocess_wall_s=time.perf_counter() - t0)
    return stats


def _build_entry(args: argparse.Namespace) -> int:
    """Inside the subprocess: build and write the stats."""
    logging.basicConfig(level=logging.WARNING)
    from model import series

    region = tuple(float(v) for v in args.region.split(",")) if args.region else None
    stats: dict = {}
    series.build_series(args._build, "demo", world=args.world, start=args._start,
                        end=args._end, region=region, workers=args._workers,
                        models=args._model, progress=False, overwrite=True, stats=stats,
                        tile=args._tile, checkpoint_dir=args.checkpoint_dir,
                        scheduler=args._scheduler)
    Path(args._stats).write_text(json.dumps(stats))
    return 0


def _digests(store: Path) -> dict[str, str]:
    """SHA-256 of the chunk files of each data variable."""
    import hashlib

    out = {}
    for var in ("filled_sm", "amsr_sm", "source_flag"):
        h = hashlib.sha256()
        for f in sorted((store / var / "c").rglob("*")):
            if f.is_file():
                h.update(f.relative_to(store).as_posix().encode())
                h.update(f.read_bytes())
        out[var] = h.hexdigest()
    return out


def tile_edge_error(tiled: Path, whole: Path) -> dict:
    """How far 32-cell tiles with halos are from one untiled run (filled_sm, m3 m-3)."""
    import xarray as xr

    a = xr.open_zarr(tiled, consolidated=False, chunks=None)["filled_sm"].values
    b = xr.open_zarr(whole, consolidated=False, chunks=None)["filled_sm"].values
    d = np.abs(a - b)
    return {"max_abs": float(np.nanmax(d)), "mean_abs": float(np.nanmean(d))}


def time_reads(store: Path, repeats: int = 7, seed: int = 0) -> dict:
    """Median seconds to read one day's map and one pixel's full series of ``filled_sm``."""
    import xarray as xr

    ds = xr.open_zarr(store, consolidated=False, chunks=None)
    var = ds["filled_sm"]
    nt, ny, nx = var.shape
    rng = np.random.default_rng(seed)
    var.isel(time=0).values  # noqa: B018  (open the array metadata once, as an app would)
    maps, pixels = [], []
    for _ in range(repeats):
        t = int(rng.integers(nt))
        t0 = time.perf_counter()
        m = var.isel(time=t).values
        maps.append(time.perf_counter() - t0)
        assert m.shape == (ny, nx)
        i, j = int(rng.integers(ny)), int(rng.integers(nx))
        t0 = time.perf_counter()
        p = var.isel(lat=i, lon=j).values
        pixels.append(time.perf_counter() - t0)
        assert p.shape == (nt,)
    return {"read_day_map_s": statistics.median(maps),
            "read_pixel_series_s": statistics.median(pixels), "store_days": nt}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.series", description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--world", default=None,
                   help=f"demo world store (default: {locations.help_default('GAPFILL_DEMO')})")
    p.add_argument("--region", default=None, help="W,S,E,N (default: the whole world)")
    p.add_argument("--model", choices=("auto", "shipped", "persistence"), default="auto")
    p.add_argument("--checkpoint-dir", default=None,
                   help="checkpoints of the shipped models (default: "
                        f"{locations.help_default('GAPFILL_CHECKPOINTS')})")
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="keep the stores in DIR (default: a temporary folder, removed)")
    p.add_argument("--repeats", type=int, default=3,
                   help="1-year builds per worker count; the best is reported (default 3)")
    p.add_argument("--series-start", default="2003-01-01")
    p.add_argument("--series-end", default="2023-12-31")
    p.add_argument("--quick", action="store_true",
                   help="a small region and short periods: checks that the benchmark runs")
    for hidden in ("--_build", "--_stats", "--_start", "--_end", "--_model", "--_scheduler"):
        p.add_argument(hidden, default=None, help=argparse.SUPPRESS)
    p.add_argument("--_workers", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--_tile", type=int, default=32, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._build:
        return _build_entry(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    plan = {**FULL, **QUICK} if args.quick else FULL
    if args.quick:
        args.region, args.repeats = args.region or QUICK["region"], QUICK["repeats"]

    from model import series

    use_shipped = args.model == "shipped" or (args.model == "auto"
                                              and _shipped_available(args.checkpoint_dir))
    factory = series.SHIPPED_MODELS if use_shipped else series.PERSISTENCE_MODELS
    model_name = (f"shipped ConvLSTM ({args.checkpoint_dir or locations.checkpoint_dir()})"
                  if use_shipped else "persistence baseline (no shipped checkpoint found)")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-series-"))
    root.mkdir(parents=True, exist_ok=True)
    kw = dict(model=factory, world=args.world, region=args.region,
              checkpoint_dir=args.checkpoint_dir)
    (y1_start, y1_end), (y4_start, y4_end) = plan["y1"], plan["y4"]
    try:
        # the machine is shared: alternate 1 and 2 workers and keep the best of `repeats`
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for rep in range(args.repeats):
            for w in (1, 2):
                logger.info("1-year build, %d worker(s), run %d of %d", w, rep + 1, args.repeats)
                runs[w].append(run_build(root / f"y1_w{w}.zarr", y1_start, y1_end,
                                         workers=w, tile=plan["tile"], **kw))
        y1_w1 = max(runs[1], key=lambda r: r["pixel_days"] / r["tiles_s"])
        y1_w2 = max(runs[2], key=lambda r: r["pixel_days"] / r["tiles_s"])
        rss_1y = runs[1][0]["peak_rss_mb"]  # one sample, like the 4-year build
        identical_1_2 = _digests(root / "y1_w1.zarr") == _digests(root / "y1_w2.zarr")
        logger.info("1-year build in one tile (no tile edges), 1 worker")
        # (quick: without Dask; the tiles' values do not depend on the scheduler)
        run_build(root / "y1_one_tile.zarr", y1_start, y1_end, workers=1, tile=4096,
                  scheduler="synchronous" if args.quick else None, **kw)
        seams = tile_edge_error(root / "y1_w1.zarr", root / "y1_one_tile.zarr")
        logger.info("4-year build, 1 worker")
        y4_w1 = run_build(root / "y4_w1.zarr", y4_start, y4_end, workers=1, tile=plan["tile"],
                          scheduler="synchronous" if args.quick else None, **kw)
        if args.quick:  # the 4-month store stands in for the 20-year one
            full, full_store = y4_w1, root / "y4_w1.zarr"
        else:
            logger.info("%s..%s build, 2 workers", args.series_start, args.series_end)
            full, full_store = run_build(root / "full.zarr", args.series_start,
                                         args.series_end, workers=2, **kw), root / "full.zarr"
        reads = time_reads(full_store)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    result = {
        "pixel_days_per_s_1_worker": round(y1_w1["pixel_days"] / y1_w1["tiles_s"], 1),
        "pixel_days_per_s_2_workers": round(y1_w2["pixel_days"] / y1_w2["tiles_s"], 1),
        "peak_rss_mb_1y": round(rss_1y, 1),
        "peak_rss_mb_4y": round(y4_w1["peak_rss_mb"], 1),
        "rss_ratio_4y_1y": round(y4_w1["peak_rss_mb"] / rss_1y, 3),
        "read_day_map_s": round(reads["read_day_map_s"], 4),
        "read_pixel_series_s": round(reads["read_pixel_series_s"], 4),
        "model": model_name,
        "details": {
            "quick": args.quick,
            "cpu_count": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "pixel_days_1y": y1_w1["pixel_days"],
            "pixel_days_per_s_all_runs": {
                f"{w}_workers": [round(r["pixel_days"] / r["tiles_s"], 1) for r in rs]
                for w, rs in runs.items()},
            "stores_1_and_2_workers_byte_identical": identical_1_2,
            "peak_rss_mb_1y_all_runs": [round(r["peak_rss_mb"], 1) for r in runs[1]],
            "cluster_startup_s_1_worker": round(y1_w1["startup_s"], 2),
            "cluster_startup_s_2_workers": round(y1_w2["startup_s"], 2),
            "max_single_process_rss_mb_1y": round(y1_w1["max_child_rss_mb"], 1),
            "max_single_process_rss_mb_4y": round(y4_w1["max_child_rss_mb"], 1),
            "full_build_pixel_days": full["pixel_days"],
            "full_build_pixel_days_per_s_2_workers": round(
                full["pixel_days"] / full["tiles_s"], 1),
            "full_build_wall_s": round(full["subprocess_wall_s"], 1),
            "full_store_days": reads["store_days"],
            "tiling_max_abs_diff_m3m3": seams["max_abs"],
            "tiling_mean_abs_diff_m3m3": seams["mean_abs"],
        },
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
