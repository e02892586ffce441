"""H SAF cells in ``gapfill assemble``: the product's flags, the nearest-point radius, and
reading a cell in slices (small files written here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.native_files import warp5_cell, write_hsaf_cell, write_warp5_grid
from data_catalog import grid
from data_catalog.assemble import hsaf
from data_catalog.assemble.plan import Plan, Product, check_signature
from data_catalog.errors import FormatError, OutOfRangeError
from data_catalog.readers import _netcdf as nc

DAY = pd.Timestamp("2016-05-01")


def obs(loc, hours, sm, **flags) -> pd.DataFrame:
    n = len(loc)
    cols = {"ssf": 1, "proc_flag": 0, "corr_flag": 0, "conf_flag": 0, **flags}
    return pd.DataFrame({"loc": loc, "time": [DAY + pd.Timedelta(hours=h) for h in hours],
                         "sm": sm, **{k: np.broadcast_to(v, (n,)) for k, v in cols.items()}})


def test_flags_drop_frozen_unusable_and_noisy_observations_and_keep_advisories(tmp_path):
    rows = pd.concat([
        obs([0] * 5, [1, 2, 3, 4, 5], [10.0] * 5, ssf=np.array([0, 1, 2, 3, 4])),
        obs([0] * 3, [6, 7, 8], [20.0] * 3, proc_flag=np.array([0, 4, 8])),
        obs([0] * 5, [9, 10, 11, 12, 13], [30.0] * 5,
            conf_flag=np.array([1, 2, 4, 8, 16])),
        obs([0] * 3, [14, 15, 16], [40.0] * 3, corr_flag=np.array([1, 4, 8])),
        obs([0] * 2, [17, 18], [np.nan, 100.0]),
    ])
    path = write_hsaf_cell(tmp_path / "H119_0165.nc", [19.3], [-155.5], [7], rows)
    with nc.open_netcdf(path) as ds:
        n = ds.dimensions["obs"].size
        sm = nc.read_float(ds["sm"], slice(0, n))
        ok = hsaf.usable(ds, slice(0, n), sm)
    kept = rows.sort_values("time")["sm"].to_numpy()[ok]
    assert ok.tolist() == [
        True, True, False, False, False,   # ssf unknown, unfrozen | frozen, melting, ice
        True, False, False,                # proc_flag 0 | any bit
        False, True, True, False, False,   # conf: bad ssf | topography, wetland | noise, 1 dB
        True, True, True,                  # corr: clipped to 0, wet correction, subsurface
        False, True]                       # missing sm | 100 %
    assert kept.tolist() == [10, 10, 20, 30, 30, 40, 40, 40, 100]


def small_plan(lat, lon, land=None) -> Plan:
    land = np.ones((lat.size, lon.size), bool) if land is None else land
    b = grid.bounds(lat, lon)
    return Plan(region=b, start="2016-05-01", end="2016-05-03", lat=lat, lon=lon,
                days=np.arange("2016-05-01", "2016-05-04", dtype="datetime64[D]"),
                land=land, land_source="test", chunks=(365, lat.size, lon.size), amsr=(),
                ascat=Product("cells", "ascat", "hsaf_cells", {}), files=[])


def test_nearest_point_within_the_radius_only(tmp_path):
    lat, lon = grid.centres(40.0, 40.5), grid.centres(10.0, 10.25)  # two cells
    km = 1 / 111.2  # degrees of latitude per km
    # 12 km north of the first cell's centre; 13 km north of the second's (nearer to it
    # than the first point, 15.8 km away, but outside the radius)
    plat = np.array([lat[0] + 12.0 * km, lat[1] + 13.0 * km])
    plon = np.array([lon[0], lon[0]])
    gpi = np.array([11, 12])
    write_warp5_grid(tmp_path / "grid.nc", plat, plon, gpi, [1, 1])
    cell = int(warp5_cell(40.1, 10.1))
    assert (warp5_cell(plat, plon) == cell).all()
    write_hsaf_cell(tmp_path / f"H119_{cell:04d}.nc", plat, plon, gpi,
                    obs([0, 1], [12, 12], [50.0, 60.0]))
    plan = small_plan(lat, lon)
    plan.ascat = Product("cells", "ascat", "hsaf_cells", {}, folder=str(tmp_path),
                         grid_file=str(tmp_path / "grid.nc"))
    jobs = hsaf.plan_cells(plan.ascat, plan)
    assert len(jobs) == 1
    assert jobs[0].target.tolist() == [0] and [x.tolist() for x in jobs[0].locs] == [[0]]
    means = hsaf.aggregate_cell(jobs[0], plan.days)
    assert means.shape == (3, 1) and means[0, 0] == 50.0 and np.isnan(means[1:, 0]).all()
    # points of another grid version than the grid file: refused
    write_warp5_grid(tmp_path / "grid.nc", plat + 0.01, plon, gpi, [1, 1])
    from data_catalog.readers.cells import load_grid

    load_grid.cache_clear()
    with pytest.raises(FormatError, match="grid versions"):
        hsaf.plan_cells(plan.ascat, plan)
    load_grid.cache_clear()
    # a region whose land cells have no point within the radius
    far = small_plan(lat + 1.0, lon)
    far.ascat = plan.ascat
    write_warp5_grid(tmp_path / "grid.nc", plat, plon, gpi, [1, 1])
    with pytest.raises(OutOfRangeError):
        hsaf.plan_cells(far.ascat, far)
    load_grid.cache_clear()


def test_reading_in_slices_gives_the_same_daily_means(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    n_loc, per = 6, 40
    loc = np.repeat(np.arange(n_loc), per)
    hours = np.tile(np.arange(per) * 1.7, n_loc)  # ~3 days each, several per day
    sm = np.round(rng.uniform(0, 100, loc.size), 2)
    rows = obs(loc, hours, sm, ssf=rng.choice([1, 1, 1, 2], loc.size))
    lat, lon = np.full(n_loc, 45.0) + np.arange(n_loc) * 0.25, np.full(n_loc, 7.0)
    path = write_hsaf_cell(tmp_path / "1234.nc", lat, lon, np.arange(n_loc), rows)
    days = np.arange("2016-05-01", "2016-05-04", dtype="datetime64[D]")
    job = hsaf.CellJob(1234, (str(path),), (np.array([1, 3, 4, 3]),), np.arange(4), "fp")
    whole = hsaf.aggregate_cell(job, days)
    monkeypatch.setattr(hsaf, "SLICE", 7)  # many spans, cut inside locations
    sliced = hsaf.aggregate_cell(job, days)
    np.testing.assert_array_equal(whole, sliced)
    ok = rows[rows["ssf"] == 1]
    want = ok.groupby([ok["loc"], ok["time"].dt.normalize()])["sm"].mean()
    assert whole[1, 0] == pytest.approx(want[(1, pd.Timestamp("2016-05-02"))], abs=1e-4)
    assert whole[0, 1] == whole[0, 3]  # two world cells served by one point


def test_signatures(tmp_path):
    write_warp5_grid(tmp_path / "g.nc", [1.0], [2.0], [3], [1])
    check_signature(tmp_path / "g.nc")
    (tmp_path / "x.nc").write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(FormatError, match=r"not netCDF \(it starts with"):
        check_signature(tmp_path / "x.nc")


def test_a_cdr_and_its_extension_in_one_folder_are_both_read(tmp_path):
    # H119 up to the 2nd, H120 from the 2nd (one day in both): the same grid point in both
    lat, lon = grid.centres(40.0, 40.25), grid.centres(10.0, 10.25)
    plat, plon, gpi = [lat[0] + 0.02], [lon[0]], [77]
    write_warp5_grid(tmp_path / "grid.nc", plat, plon, gpi, [1])
    cell = int(warp5_cell(plat[0], plon[0]))
    write_hsaf_cell(tmp_path / f"H119_{cell:04d}.nc", plat, plon, gpi,
                    obs([0, 0, 0], [12, 36, 30], [10.0, 20.0, 40.0]))   # 1st; 2nd twice
    write_hsaf_cell(tmp_path / f"H120_{cell:04d}.nc", plat, plon, gpi,
                    obs([0, 0], [40, 60], [60.0, 70.0]))                # 2nd; 3rd
    plan = small_plan(lat, lon)
    plan.ascat = Product("cells", "ascat", "hsaf_cells", {}, folder=str(tmp_path),
                         grid_file=str(tmp_path / "grid.nc"))
    from data_catalog.readers.cells import load_grid

    load_grid.cache_clear()
    jobs = hsaf.plan_cells(plan.ascat, plan)
    assert len(jobs) == 1 and len(jobs[0].paths) == 2
    means = hsaf.aggregate_cell(jobs[0], plan.days)[:, 0]
    np.testing.assert_allclose(means, [10.0, (20 + 40 + 60) / 3, 70.0])
    load_grid.cache_clear()
