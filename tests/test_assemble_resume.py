"""``gapfill assemble`` killed with SIGKILL after its first block resumes to the same world
as an uninterrupted run, and a ``dask.distributed`` cluster of two worker processes
(started by the test) gives that world too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from data_catalog.assemble import assemble, open_assembled
from data_catalog.assemble.runner import KILL_ENV
from tests.assemble_data import long_sparse  # noqa: F401
from tests.dask_cluster import REPO, dask_scheduler  # noqa: F401

REGION = (-92.0, 33.0, -90.0, 35.0)
DAYS = ("2012-07-02", "2013-08-05")


def same_world(a_path, b_path) -> None:
    a, b = open_assembled(a_path).load(), open_assembled(b_path).load()
    for ds, path in ((a, a_path), (b, b_path)):  # the only attributes that name the store
        ds.attrs["command"] = ds.attrs["command"].replace(str(path), "OUT")
        ds.attrs.pop("source_path")
    xr.testing.assert_identical(a, b)


def reference(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.zarr"
    if not out.exists():
        summary = assemble(["rt_lprm"], "rt_hsaf", REGION, *DAYS, out,
                           catalog=data["catalog"], progress=False)
        assert summary["blocks"] == 2 and summary["blocks_reused"] == 0
    return out


@pytest.mark.slow
def test_kill_9_after_a_block_then_resume_gives_the_same_world(long_sparse, tmp_path,  # noqa: F811
                                                                tmp_path_factory):
    ref = reference(long_sparse, tmp_path_factory)
    out = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-m", "gapfill.cli", "assemble", "--catalog",
           str(long_sparse["catalog"]), "--amsr", "rt_lprm", "--ascat", "rt_hsaf",
           "--region=-92,33,-90,35", "--start", DAYS[0], "--end", DAYS[1], "--out", str(out),
           "-q"]
    env = {**os.environ, KILL_ENV: "1"}
    res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == -9, res.stderr[-2000:]  # SIGKILL, mid-run
    work = tmp_path / ".killed.zarr.assembling"
    assert not out.exists()
    assert sorted(p.name for p in (work / "blocks").iterdir()) == ["block-00000.json"]
    summary = assemble(["rt_lprm"], "rt_hsaf", REGION, *DAYS, out,
                       catalog=long_sparse["catalog"], progress=False)
    assert summary["blocks_reused"] == 1 and summary["blocks"] == 2
    assert not work.exists()
    same_world(ref, out)
    got = open_assembled(out)
    assert np.isfinite(got["amsr_sm"].values).sum() > 100  # not a world of gaps
    assert np.isfinite(got["ascat_sm"].values).sum() > 1000


@pytest.mark.slow
def test_dask_cluster_of_two_worker_processes_gives_the_same_world(long_sparse, tmp_path,  # noqa: F811
                                                                    tmp_path_factory, capsys,
                                                                    dask_scheduler):  # noqa: F811
    ref = reference(long_sparse, tmp_path_factory)
    out = tmp_path / "dask.zarr"
    from gapfill.cli import main

    code = main(["assemble", "--catalog", str(long_sparse["catalog"]), "--amsr", "rt_lprm",
                 "--ascat", "rt_hsaf", "--region=-92,33,-90,35", "--start", DAYS[0], "--end",
                 DAYS[1], "--out", str(out), "--scheduler", dask_scheduler, "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    # the blocks ran in the cluster's worker processes, not in this one
    assert summary["worker_pids"] and os.getpid() not in summary["worker_pids"]
    same_world(ref, out)
