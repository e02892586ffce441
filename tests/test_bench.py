"""Every benchmark runs end to end in its ``--quick`` mode (tiny sizes, a few steps), so
that none can break unnoticed: ``python -m bench.NAME --quick --json`` in a subprocess
prints every figure its docstring documents, each a finite number.  The figures
themselves are reported by the full runs, never asserted here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


def needs_chromium(test):
    """A browser test, skipped where Debian chromium is missing (as ``tests/browser/``)."""
    skip = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed "
                              "(apt-get install chromium; .ci/run does it)")
    return pytest.mark.browser(skip(test))


def quick(name: str, *args: str, timeout: float = 600) -> dict:
    """The JSON of ``python -m bench.NAME --quick --json``; the run must succeed."""
    res = subprocess.run([sys.executable, "-m", f"bench.{name}", "--quick", "--json", *args],
                         cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out.get("quick", out.get("details", out.get("config", {})).get("quick")) is True
    return out


def finite(d: dict, *keys: str) -> None:
    """Each key (``a.b`` for nested) is present and a finite number."""
    for key in keys:
        v = d
        for part in key.split("."):
            assert part in v, f"{key} missing from {sorted(v)}"
            v = v[part]
        assert isinstance(v, int | float) and not isinstance(v, bool), (key, v)
        assert math.isfinite(v), (key, v)


def test_inference_quick():
    out = quick("inference")
    finite(out, "model_pixel_steps_per_s", "naive_pixel_steps_per_s",
           "ceiling_pixel_steps_per_s", "speedup_vs_naive", "fraction_of_ceiling",
           "config.model_vs_naive_max_abs_diff_m3m3")
    assert out["speedup_vs_naive"] == pytest.approx(
        out["model_pixel_steps_per_s"] / out["naive_pixel_steps_per_s"])
    assert out["config"]["height"] == out["config"]["width"] == 16
    # the optimised path computes what the naive reference computes
    assert out["config"]["model_vs_naive_max_abs_diff_m3m3"] < 1e-3


@pytest.mark.slow
def test_assemble_quick(tmp_path):
    out = quick("assemble", "--keep", str(tmp_path))
    finite(out, "days_per_s_1_worker", "days_per_s_2_workers", "peak_rss_mb_30d",
           "peak_rss_mb_365d", "rss_ratio_365d_30d", "bytes_read_per_day",
           "details.file_bytes_per_day")
    assert out["rss_ratio_365d_30d"] == pytest.approx(
        out["peak_rss_mb_365d"] / out["peak_rss_mb_30d"], abs=1e-3)
    # it read what it wrote: at least the day's two files per day
    assert out["bytes_read_per_day"] >= out["details"]["file_bytes_per_day"]
    assert (tmp_path / "long.zarr" / "zarr.json").exists()


@pytest.mark.slow
def test_series_quick(tmp_path):
    out = quick("series", "--keep", str(tmp_path))
    finite(out, "pixel_days_per_s_1_worker", "pixel_days_per_s_2_workers", "peak_rss_mb_1y",
           "peak_rss_mb_4y", "rss_ratio_4y_1y", "read_day_map_s", "read_pixel_series_s",
           "details.tiling_max_abs_diff_m3m3", "details.tiling_mean_abs_diff_m3m3")
    assert out["rss_ratio_4y_1y"] == pytest.approx(
        out["peak_rss_mb_4y"] / out["peak_rss_mb_1y"], abs=1e-3)
    d = out["details"]
    assert d["stores_1_and_2_workers_byte_identical"] is True
    assert d["pixel_days_1y"] == 31 * 8 * 8 and d["full_store_days"] == 120
    assert (tmp_path / "y1_one_tile.zarr" / "zarr.json").exists()


@pytest.mark.slow
@needs_chromium
def test_app_quick():
    out = quick("app")
    (name,) = out["regions"]
    finite(out["regions"][name], "cells", "p50_s", "p95_s", "matplotlib_s",
           "speedup_vs_matplotlib")
    r = out["regions"][name]
    assert r["cells"] == 16 * 16 and r["steps"] == 3
    assert 0 < r["p50_s"] <= r["p95_s"]
    finite(out, "fill_this_period_month.fill_s", "fill_this_period_month.to_browsable_s")
    assert out["fill_this_period_month"]["status"].startswith("filled 7 days")


@pytest.mark.slow
@needs_chromium
def test_load_quick():
    out = quick("load")
    finite(out, "sessions", "errors", "p50_s", "p95_s", "rss_mb_before", "rss_mb_peak",
           "rss_mb_after", "rss_after_vs_before")
    assert out["sessions"] == 2 and out["date_changes"] > 0
    assert out["rss_mb_peak"] >= out["rss_mb_before"]
