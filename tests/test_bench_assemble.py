"""``python -m bench.assemble --quick`` runs end to end (tiny files), so the benchmark
cannot break unnoticed; its numbers are reported by the full run, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_prints_every_figure(tmp_path):
    res = subprocess.run([sys.executable, "-m", "bench.assemble", "--json", "--quick",
                          "--keep", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    for key in ("days_per_s_1_worker", "days_per_s_2_workers", "peak_rss_mb_30d",
                "peak_rss_mb_365d", "rss_ratio_365d_30d", "bytes_read_per_day"):
        assert out[key] > 0, key
    assert out["rss_ratio_365d_30d"] == pytest.approx(
        out["peak_rss_mb_365d"] / out["peak_rss_mb_30d"], abs=1e-3)
    # it read what it wrote: at least the day's two files per day
    assert out["bytes_read_per_day"] >= out["details"]["file_bytes_per_day"]
    assert (tmp_path / "long.zarr" / "zarr.json").exists()
