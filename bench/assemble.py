"""Benchmark of ``gapfill assemble``: ``python -m bench.assemble --json [--quick]``.

Writes synthetic global-size native files (1440 x 720 LPRM AMSR2 days and C3S ACTIVE
images, encoded like the real ones: :mod:`bench.native_files`) and assembles a
continental region (the contiguous USA, -125..-66 E, 24..50 N: 236 x 104 cells, time
chunks of 122 days) from them, each run in a fresh subprocess:

``days_per_s_1_worker`` / ``days_per_s_2_workers``
    days of a two-block period (244 days) divided by the time its blocks took, in this
    process (1 worker) or on a local Dask cluster of 2 worker processes (its start-up is
    in ``details``); best of ``--repeats`` alternating runs (every run is in ``details``);
``peak_rss_mb_30d`` / ``peak_rss_mb_365d`` / ``rss_ratio_365d_30d``
    peak resident memory of a 30-day and a 365-day run (1 worker, ``ru_maxrss`` of the
    process): one block at a time keeps the ratio near 1 (target <= 1.2);
``bytes_read_per_day``
    bytes the 365-day run passed through ``read()`` (``/proc``'s ``rchar``: page cache
    hits included) per day.

``details.block_cpu_s_per_day`` gives the CPU the blocks used per day: on a machine shared
with other jobs, days per second say more about the neighbours than about the code.

A few distinct days are written, and every other day is a hard link to one of them (LPRM)
or a copy with its own date (ACTIVE): the files are read in full each time (reading does
not depend on the values); writing takes a minute and about 0.6 GB of disk.  ``--quick`` uses tiny
files, region and periods, to check that the benchmark still runs (a test does).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
FULL = {"files": (-180.0, -90.0, 180.0, 90.0), "region": (-125.0, 24.0, -66.0, 50.0),
        "start": "2013-01-01", "short": 30, "long": 365, "speed": 244, "templates": 4}
QUICK = {"files": (-100.0, 30.0, -80.0, 40.0), "region": (-95.0, 32.0, -90.0, 36.0),
         "start": "2013-01-01", "short": 4, "long": 12, "speed": 8, "templates": 2}


def write_files(folder: Path, cfg: dict) -> Path:
    """The LPRM and ACTIVE files of ``cfg['long']`` days and a catalog naming them."""
    from bench.native_files import cci_name, lprm_name, write_cci_image, write_lprm
    from data_catalog import geo, grid, schema

    w, s, e, n = cfg["files"]
    lat, lon = grid.centres(s, n), grid.centres(w, e)
    land = geo.land_mask(lat, lon)
    rng = np.random.default_rng(0)
    days = pd.date_range(cfg["start"], periods=max(cfg["long"], cfg["speed"]), freq="D")
    (folder / "lprm").mkdir(parents=True, exist_ok=True)
    (folder / "active").mkdir(exist_ok=True)
    templates = []
    for k in range(cfg["templates"]):
        # a field with the real files' look: land only, swath stripes, a smooth pattern
        yy, xx = np.meshgrid(lat, lon, indexing="ij")
        seen = land & (np.mod(xx + 37.0 * k - 0.2 * yy, 25.0) < 15.0)
        base = 0.25 + 0.1 * np.sin(np.radians(3 * yy + 5 * k)) * np.cos(np.radians(2 * xx))
        sm = np.where(seen, np.round(100 * (base + 0.02 * rng.standard_normal(base.shape))),
                      np.nan)
        freq = np.where(seen, np.where(rng.random(base.shape) < 0.03, 7.3, 6.9), np.nan)
        fields = {"soil_moisture_c1": sm, "soil_moisture_c2": sm, "soil_moisture_x": sm,
                  "ts": np.where(seen, 290.0, np.nan), "frequency_map": freq,
                  "opt_depth_c1": np.where(seen, 0.4, np.nan),
                  "opt_depth_c2": np.where(seen, 0.4, np.nan),
                  "opt_depth_x": np.where(seen, 0.4, np.nan),
                  "mask": np.where(land, 0, 512).astype(np.int16),
                  "scantime": np.where(seen, 7.0e8 + 3600.0 * k, np.nan)}
        lp = folder / f"lprm-template-{k}.nc4"
        write_lprm(lp, lat, lon, fields)
        asc = np.where(seen, np.float32(100 * base), np.nan).astype(np.float32)
        ap = folder / f"active-template-{k}.nc"
        flag = np.where(seen, 0, 127).astype(np.int8)
        write_cci_image(ap, lat, lon, days[0], asc, flag, np.where(seen, 256, 0))
        templates.append((lp, ap))
    for i, day in enumerate(days):
        lp, ap = templates[i % len(templates)]
        dst = folder / "lprm" / lprm_name(day, schema.SENSOR_AMSR2)
        if not dst.exists():  # LPRM files take their day from the name only
            os.link(lp, dst)
        dst = folder / "active" / cci_name(day)
        if not dst.exists():  # CCI images also say it in their time variable
            shutil.copyfile(ap, dst)
            with netCDF4.Dataset(dst, "a") as ds:
                ds["time"][0] = (day - pd.Timestamp("1970-01-01")).days
    cat = {"sources": {
        "bench_lprm": {"driver": "lprm", "args": {"paths": str(folder / "lprm")}},
        "bench_active": {"driver": "cci_images",
                         "args": {"paths": str(folder / "active" / "*.nc")}}}}
    (folder / "catalog.yml").write_text(yaml.safe_dump(cat))
    return folder / "catalog.yml"


def run_child(catalog: Path, cfg: dict, days: int, workers: int, out: Path) -> dict:
    """One assembly in a fresh process: its summary and peak RSS."""
    end = (pd.Timestamp(cfg["start"]) + pd.Timedelta(days=days - 1)).strftime("%Y-%m-%d")
    spec = {"catalog": str(catalog), "region": cfg["region"], "start": cfg["start"],
            "end": end, "workers": workers, "out": str(out)}
    res = subprocess.run([sys.executable, "-m", "bench.assemble", "--child", json.dumps(spec)],
                         cwd=REPO, capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        raise RuntimeError(f"assemble run failed: {res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _child(spec: dict) -> int:
    from data_catalog.assemble import assemble

    summary = assemble(["bench_lprm"], "bench_active", spec["region"], spec["start"],
                       spec["end"], spec["out"], catalog=spec["catalog"],
                       workers=spec["workers"], progress=False, force=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    print(json.dumps({**summary, "peak_rss_mb": round(peak_kb / 1024, 1)}))
    return 0


def run(quick: bool = False, keep: Path | None = None, repeats: int = 2) -> dict:
    cfg = QUICK if quick else FULL
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-assemble-"))
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    catalog = write_files(folder / "files", cfg)
    write_s = time.perf_counter() - t0
    short = run_child(catalog, cfg, cfg["short"], 1, folder / "short.zarr")
    long = run_child(catalog, cfg, cfg["long"], 1, folder / "long.zarr")
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(max(repeats, 1)):  # alternating, best of each: the machine is shared
        for workers in (1, 2):
            runs[workers].append(run_child(catalog, cfg, cfg["speed"], workers,
                                           folder / f"speed{workers}.zarr"))
    one, two = (min(runs[w], key=lambda r: r["blocks_s"]) for w in (1, 2))
    per_day = sum(f.stat().st_size for f in
                  (next((folder / "files" / "lprm").iterdir()),
                   next((folder / "files" / "active").iterdir())))
    result = {
        "days_per_s_1_worker": round(one["days"] / one["blocks_s"], 2),
        "days_per_s_2_workers": round(two["days"] / two["blocks_s"], 2),
        "peak_rss_mb_30d": short["peak_rss_mb"],
        "peak_rss_mb_365d": long["peak_rss_mb"],
        "rss_ratio_365d_30d": round(long["peak_rss_mb"] / short["peak_rss_mb"], 3),
        "bytes_read_per_day": int(long["bytes_read"] / long["days"]),
        "details": {
            "quick": quick, "region": cfg["region"], "cells": [long["lat"], long["lon"]],
            "days": {"short": short["days"], "long": long["days"], "speed": one["days"]},
            "blocks": {"long": long["blocks"], "speed": one["blocks"]},
            "speedup_2_workers": round(one["blocks_s"] / two["blocks_s"], 2),
            # CPU seconds per day inside the blocks (all threads of the block's process):
            # what the runs cost whatever else the machine was doing
            "block_cpu_s_per_day": {"1_worker": round(one["block_cpu_s"] / one["days"], 4),
                                    "2_workers": round(two["block_cpu_s"] / two["days"], 4)},
            "file_bytes_per_day": per_day, "write_files_s": round(write_s, 1),
            "seconds": {"short": short["seconds"], "long": long["seconds"],
                        "speed_1": one["seconds"], "speed_2": two["seconds"],
                        "cluster_start_2": two.get("startup_s")},
            "days_per_s_every_run": {w: [round(r["days"] / r["blocks_s"], 2) for r in runs[w]]
                                     for w in (1, 2)},
            "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load0],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    if keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.assemble",
                                description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    p.add_argument("--keep", type=Path, default=None, help="work in (and keep) this folder")
    p.add_argument("--repeats", type=int, default=2,
                   help="alternating 1- and 2-worker speed runs; the best of each counts")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(json.loads(args.child))
    result = run(args.quick, args.keep, 1 if args.quick else args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            if k != "details":
                print(f"{k:24s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
