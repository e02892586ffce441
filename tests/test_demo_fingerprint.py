"""The demo world generator's output is pinned: a tiny world's fingerprint per version.

The shipped store is rebuilt for every user only when ``demo.VERSION`` changes, so any
change to the generated numbers must come with a new version.  This test builds a tiny
world and compares a fingerprint of every variable (NaN count, sum, sum of squares,
position-weighted sum; exact counts for integer codes and a hash of every attribute) with
the one recorded for the current version.  A reordered random draw, a changed constant
(a 0.2 % change of the ASCAT noise moves the sum of squares by about 1e-5 relative) or a
moved gap priority changes them by far more than the tolerance, 1e-7, which absorbs only
last-bit differences between numerical libraries.  When the world is meant to change:
bump ``VERSION`` and record the new fingerprint under it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from data_catalog import demo

# 10 x 30 cells, Gulf coast to Tennessee: sea, dense south-eastern forest, winter frost,
# two city RFI hot spots (Birmingham, Nashville); Nov 2010 to Aug 2012 spans the end of
# AMSR-E, the gap year and the start of AMSR2, with ASCAT throughout.
TINY = dict(west=-88.5, south=30.0, east=-86.0, north=37.5, start="2010-11-01",
            end="2012-08-31", n_stations=2, seed=5)

# Keyed by generator version: only the current version's record is checked.  Version 3
# (recorded with the generator of commit 02038cc, still a single demo.py; the split
# package gave the same) is kept as the record of what v3 stores hold; version 4
# (sensor errors calibrated to published figures) changed only amsr_sm, ascat_sm and the
# attributes: the truth, the gap mask and the stations are the same as v3's.
FINGERPRINTS = {
    "4": {
        "world.attrs": ["45cde7f5c3de699db946abda7d891a9510eabc8dc1c146c6c1c8877b2ac26af5"],
        "world.amsr_sm": [169774, 6418.671923734248, 1643.7657516219315, 313208.86262656003],
        "world.ascat_sm": [85442, 4917451.458911896, 303568411.282462, 240479750.44156265],
        "world.gap_mask": [31226, 21586, 34914, 413, 101157, 1654, 10050, 0],
        "world.land": [15, 285, 0],
        "world.lat": [0, 1012.5, 34312.34375, 16255.625],
        "world.lon": [0, -872.5, 76130.78125, -4778.125],
        "world.porosity": [0, 122.70881113409996, 50.267569011001044, 5848.05899271369],
        "world.residual": [0, 13.947901861742139, 0.672878690751739, 667.1377923954278],
        "world.sensor": [272, 337, 61, 0],
        "world.time": [670, 1288569600000000000, 1346371200000000000],
        "world.truth_sm": [0, 39217.2841796875, 8235.308375983033, 1921690.8961029053],
        "world.vegetation": [0, 212.41303670406342, 157.20016746401478, 9831.377869039774],
        "stations.attrs": ["f574a26910514312c877a132509bead4b84078d7b888cf1a546b35859024734a"],
        "stations.flag": [32153, 0, 0, 0, 7, 0],
        "stations.sm": [4771, 5145.96909962967, 1061.6228409921225, 251068.54297650978],
        "stations.station": [1, 1, 0],
        "stations.time": [16080, 1288569600000000000, 1346454000000000000],
    },
    "3": {
        "world.attrs": ["8af2959fc53e92215499adea9f8f703ea6a4e798e7f0fd8dbfd66860a609e29a"],
        "world.amsr_sm": [169774, 6638.572163581848, 1564.8599264325612, 323676.4160909653],
        "world.ascat_sm": [85442, 4745745.29296875, 222631666.94075775, 232313617.09179688],
        "world.gap_mask": [31226, 21586, 34914, 413, 101157, 1654, 10050, 0],
        "world.land": [15, 285, 0],
        "world.lat": [0, 1012.5, 34312.34375, 16255.625],
        "world.lon": [0, -872.5, 76130.78125, -4778.125],
        "world.porosity": [0, 122.70881113409996, 50.267569011001044, 5848.05899271369],
        "world.residual": [0, 13.947901861742139, 0.672878690751739, 667.1377923954278],
        "world.sensor": [272, 337, 61, 0],
        "world.time": [670, 1288569600000000000, 1346371200000000000],
        "world.truth_sm": [0, 39217.2841796875, 8235.308375983033, 1921690.8961029053],
        "world.vegetation": [0, 212.41303670406342, 157.20016746401478, 9831.377869039774],
        "stations.attrs": ["f574a26910514312c877a132509bead4b84078d7b888cf1a546b35859024734a"],
        "stations.flag": [32153, 0, 0, 0, 7, 0],
        "stations.sm": [4771, 5145.96909962967, 1061.6228409921225, 251068.54297650978],
        "stations.station": [1, 1, 0],
        "stations.time": [16080, 1288569600000000000, 1346454000000000000],
    },
}


def fingerprint(path: Path) -> dict[str, list]:
    """``name -> [nan count, sum, sum of squares, weighted sum]`` (floats),
    ``bincount + [min]`` (codes), ``[size, first, last]`` (times, ns) and
    ``group.attrs -> [sha256]`` of every attribute."""
    world = xr.open_zarr(path, consolidated=False, zarr_format=3).load()
    stations = xr.open_zarr(path, group=demo.STATIONS_GROUP, consolidated=False,
                            zarr_format=3).load()
    out: dict[str, list] = {}
    for group, ds in (("world", world), ("stations", stations)):
        attrs = {"": ds.attrs, **{n: v.attrs for n, v in ds.variables.items()}}
        text = json.dumps(attrs, sort_keys=True, default=lambda v: np.asarray(v).tolist())
        out[f"{group}.attrs"] = [hashlib.sha256(text.encode()).hexdigest()]
        for name, var in sorted(ds.variables.items()):
            a = np.asarray(var.values)
            if a.dtype.kind == "M":
                ns = a.astype("datetime64[ns]").astype(np.int64)
                out[f"{group}.{name}"] = [int(ns.size), int(ns[0]), int(ns[-1])]
            if a.dtype.kind == "f":
                weight = (np.arange(a.size) % 97 + 1).reshape(a.shape)
                a64 = a.astype(np.float64)
                out[f"{group}.{name}"] = [int(np.isnan(a).sum()), float(np.nansum(a64)),
                                          float(np.nansum(a64**2)),
                                          float(np.nansum(a64 * weight))]
            elif a.dtype.kind in "iub":
                codes = a.astype(np.int64)
                out[f"{group}.{name}"] = (np.bincount((codes - codes.min()).ravel()).tolist()
                                          + [int(codes.min())])
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return demo.build_demo_world(tmp_path_factory.mktemp("tiny") / "w.zarr", progress=False,
                                 **TINY)


def test_every_gap_category_occurs(tiny):
    from data_catalog import schema

    mask = xr.open_zarr(tiny, consolidated=False, zarr_format=3)[schema.GAP_MASK].values
    assert set(np.unique(mask)) == set(range(7))  # the fingerprint covers every category


def test_world_matches_the_fingerprint_of_its_version(tiny):
    assert demo.VERSION in FINGERPRINTS, (
        f"generator version {demo.VERSION} has no recorded fingerprint: record it here")
    expected = FINGERPRINTS[demo.VERSION]
    got = fingerprint(tiny)
    assert set(got) == set(expected)
    for name, want in expected.items():
        if len(want) == 4 and isinstance(want[1], float):
            assert got[name][0] == want[0], name
            assert got[name][1:] == pytest.approx(want[1:], rel=1e-7, abs=1e-9), name
        else:
            assert got[name] == want, name
