"""Pure plot functions and the map machinery, without a browser."""

from __future__ import annotations

import dataclasses

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from app import plots
from app.days import DayFields
from app.maps import MapSet, image_source
from app.mapspecs import MAPS, Layer, MapSpec, layer_elements, map_titles
from app.regrid import regrid_like
from app.state import ExplorerState, GridInfo
from data_catalog import schema

hv.extension("bokeh")


@pytest.fixture(scope="module")
def ds():
    return schema.mock_grid_dataset(ntime=10, nlat=24, nlon=32, start="2015-06-01",
                                    gap_fraction=0.8)


def fields_of(ds, k: int, filled: bool = True) -> DayFields:
    day = ds.isel(time=k)
    truth = day[schema.TRUTH_SM].values
    return DayFields(date=pd.Timestamp(day.time.values), lat=ds.lat.values, lon=ds.lon.values,
                     amsr=day[schema.AMSR_SM].values, gap=day[schema.GAP_MASK].values,
                     ascat=day[schema.ASCAT_SM].values, land=ds[schema.LAND].values,
                     sensor=int(day.sensor), truth=truth,
                     filled=(truth + 0.01).astype(np.float32) if filled else None)


def test_sm_layer_type_dims_and_range(ds):
    f = fields_of(ds, 0)
    img = layer_elements(f)["raw_sm"]
    assert isinstance(img, hv.Image)
    assert [d.name for d in img.kdims] == ["lon", "lat"]
    assert img.vdims[0].unit == "m3 m-3"
    assert img.range("lon") == (-100.0, -92.0) and img.range("lat") == (30.0, 36.0)
    lo, hi = img.range("sm")
    assert 0 < lo < hi < 0.6
    # the (lat, lon) field comes back unchanged, rows in the order of the latitudes
    np.testing.assert_array_equal(img.dimension_values(1, expanded=False), f.lat)
    np.testing.assert_array_equal(img.dimension_values(2, flat=False), f.amsr)


def test_ascat_keeps_its_units(ds):
    f = fields_of(ds, 0)
    img = layer_elements(f)["ascat"]
    assert img.vdims[0].unit == "% saturation"
    assert img.range("ascat")[1] > 1.0  # percent, not m3 m-3


def test_shape_mismatch_is_an_error(ds):
    f = fields_of(ds, 0)
    with pytest.raises(ValueError, match="does not match"):
        plots.image(f.lon, f.lat, f.amsr[:, :5], plots.SM_DIM)


def test_gap_layer_and_fraction(ds):
    f = fields_of(ds, 1)
    img = layer_elements(f)["raw_gap"]
    v = img.dimension_values(2)
    finite = v[np.isfinite(v)]
    assert set(np.unique(finite)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    land = f.gap != schema.NOT_LAND
    expect = ((f.gap != schema.OBSERVED) & land).sum() / land.sum()
    assert plots.gap_fraction(f.gap) == pytest.approx(expect)
    assert plots.gap_fraction(np.full((3, 3), schema.NOT_LAND)) != plots.gap_fraction(
        np.full((3, 3), schema.NOT_LAND))  # NaN without land


def test_filled_mark_marks_exactly_the_gaps(ds):
    f = fields_of(ds, 1)
    img = layer_elements(f)["filled_mark"]
    marked = np.isfinite(img.dimension_values(2, flat=False))
    np.testing.assert_array_equal(marked, (f.gap != 0) & (f.gap != 6) & f.land)


def test_difference_observed_only(ds):
    f = fields_of(ds, 2)
    real = dataclasses.replace(f, truth=None)  # a real product: the uncertainty by default
    assert "uncertainty" in layer_elements(real) and "diff" not in layer_elements(real)
    d = layer_elements(real, choice="diff_observed")["diff_observed"]
    vals = d.dimension_values(2, flat=False)
    assert np.isnan(vals[f.gap != 0]).all()
    ok = f.gap == 0
    np.testing.assert_allclose(vals[ok], (f.filled - f.amsr)[ok], rtol=1e-6)
    t = layer_elements(f)["diff"]  # a demo world: against the truth
    np.testing.assert_allclose(t.range("diff"), (0.01, 0.01), atol=1e-6)


def test_series_plot_layers():
    idx = pd.date_range("2015-06-01", periods=10)
    frame = pd.DataFrame({"raw": np.r_[np.full(3, np.nan), np.linspace(0.1, 0.2, 7)],
                          "filled": np.linspace(0.1, 0.2, 10),
                          "insitu": np.linspace(0.12, 0.22, 10),
                          "ascat_scaled": np.linspace(0.1, 0.3, 10),
                          "gap": [True, True, True] + [False] * 7}, index=idx)
    ov = plots.series_plot(frame, "2015-06-05", " (scaled)")
    assert isinstance(ov, hv.Overlay)
    kinds = [type(e).__name__ for e in ov]
    assert kinds.count("VSpans") == 1 and kinds.count("VLine") == 1
    assert kinds.count("Curve") == 3 and kinds.count("Scatter") == 1
    spans = [e for e in ov if isinstance(e, hv.VSpans)][0]
    start = pd.Timestamp(spans.data.iloc[0, 0])
    end = pd.Timestamp(spans.data.iloc[0, 1])
    assert start == pd.Timestamp("2015-05-31 12:00") and end == pd.Timestamp("2015-06-03 12:00")
    labels = [e.label for e in ov]
    assert plots.ASCAT_RESCALED in labels  # one name, however it was scaled
    assert all(e.vdims[0].unit == "m3 m-3" for e in ov if isinstance(e, hv.Curve))


def test_a_pixel_scatter_names_the_truth_on_its_axis():
    frame = pd.DataFrame({"truth": [0.1, 0.2, 0.3], "raw": [0.12, np.nan, 0.29],
                          "filled": [0.11, 0.21, 0.31]})
    ov = plots.scatter_plot(frame, "truth")
    xdim = [e for e in ov if isinstance(e, hv.Scatter)][0].kdims[0]
    assert xdim.label == "Truth (demo world)" and xdim.unit == "m3 m-3"
    assert plots.scatter_plot(frame.rename(columns={"truth": "insitu"})).get(0).kdims[
        0].label == "In situ"


def test_scatter_has_one_to_one_line():
    frame = pd.DataFrame({"insitu": [0.1, 0.2, 0.3], "raw": [0.12, np.nan, 0.29],
                          "filled": [0.11, 0.21, 0.31]})
    ov = plots.scatter_plot(frame)
    scatters = [e for e in ov if isinstance(e, hv.Scatter)]
    assert [len(s) for s in scatters] == [2, 3]
    line = [e for e in ov if isinstance(e, hv.Curve)][0]
    xs, ys = line.dimension_values(0), line.dimension_values(1)
    np.testing.assert_array_equal(xs, ys)
    assert xs[0] < 0.1 and xs[1] > 0.31


def test_station_points_flag_selection():
    table = pd.DataFrame({"id": ["A", "B"], "network": ["N", "N"], "name": ["a", "b"],
                          "lat": [31.0, 32.0], "lon": [-99.0, -98.0]})
    pts = plots.station_points(table, "B")
    assert list(pts.dimension_values("selected")) == [0, 1]
    assert pts.range("lon") == (-99.0, -98.0)


def test_coastlines_path():
    p = plots.coastlines([np.array([[0, 0], [1, 1]]), np.array([[2, 2]])])
    assert isinstance(p, hv.Path) and len(p.split()) == 1
    assert len(plots.coastlines([]).split()) == 0


def test_coastlines_are_one_path_broken_at_nan():
    """Several polylines become one path with a NaN row between them, drawn as one line."""
    a, b = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[2.0, 2.0], [3.0, 2.5], [4.0, 2.0]])
    p = plots.coastlines([a, b])
    (xy,) = p.split(datatype="array")
    np.testing.assert_array_equal(xy[:2], a)
    assert np.isnan(xy[2]).all()
    np.testing.assert_array_equal(xy[3:], b)
    plot = hv.renderer("bokeh").get_plot(p)
    xs = plot.handles["source"].data["xs"]
    assert len(xs) == 1 and int(np.isnan(np.asarray(xs[0])).sum()) == 1


def test_layers_and_titles(ds):
    f = fields_of(ds, 3, filled=False)
    layers = layer_elements(f)
    assert set(layers) == {"raw_sm", "raw_gap", "filled_sm", "filled_mark", "ascat", "diff"}
    assert np.isnan(layers["filled_sm"].dimension_values(2)).all()
    titles = map_titles(f)
    assert "no output yet" in titles["filled"] and "% saturation" in titles["ascat"]
    assert f"{f.date:%Y-%m-%d}" in titles["raw"]


def test_regrid_like_identity_and_orientation():
    lat = np.arange(30.125, 32, 0.25)
    lon = np.arange(-99.875, -97, 0.25)
    vals = np.arange(lat.size * lon.size, dtype=np.float32).reshape(lat.size, lon.size)
    out = regrid_like(vals, lat, lon, -100.0, 30.0, lon.size * 0.25, lat.size * 0.25,
                      lon.size, lat.size)
    np.testing.assert_array_equal(out, vals)  # first row = southern edge
    half = regrid_like(vals, lat, lon, -100.0, 30.0, lon.size * 0.25, lat.size * 0.25,
                       lon.size // 2, lat.size // 2, agg="max")
    assert half.shape == (lat.size // 2, lon.size // 2) and half[-1, -1] == vals.max()


@pytest.mark.parametrize("shape,out", [((250, 350), (250, 290)), ((250, 350), (231, 280)),
                                       ((64, 64), (60, 50)), ((100, 200), (37, 51))])
def test_regrid_like_whole_region_mean_equals_datashader(shape, out):
    """The numpy path for the zoomed-out view gives Datashader's own mean (NaNs skipped,
    fractional cell weights), south row first."""
    import datashader as dsh
    import xarray as xr

    rng = np.random.default_rng(1)
    lat = 5.125 + 0.25 * np.arange(shape[0])
    lon = -124.875 + 0.25 * np.arange(shape[1])
    vals = rng.random(shape).astype(np.float32)
    vals[vals < 0.3] = np.nan
    vals[: shape[0] // 3, : shape[1] // 4] = np.nan  # whole output cells without data
    ext = (lon[0] - 0.125, lat[0] - 0.125, 0.25 * lon.size, 0.25 * lat.size)
    got = regrid_like(vals, lat, lon, *ext, out[1], out[0], agg="mean")
    cvs = dsh.Canvas(plot_width=out[1], plot_height=out[0], x_range=(ext[0], ext[0] + ext[2]),
                     y_range=(ext[1], ext[1] + ext[3]))
    ref = cvs.raster(xr.DataArray(vals, coords={"y": lat, "x": lon}, dims=("y", "x")),
                     interpolate="nearest", agg="mean", nan_value=np.nan)
    want = np.asarray(ref.values, np.float32)
    if ref["y"].values[0] > ref["y"].values[-1]:
        want = want[::-1]
    assert got.shape == out and got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).any() and not np.isnan(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


def test_fast_path_writes_what_holoviews_would_draw(ds):
    """A date change written straight into the data sources equals HoloViews' own render."""
    import bokeh.document
    import panel as pn

    from app.maps import canvas_renderer

    state = ExplorerState(GridInfo.from_dataset(ds))
    maps = MapSet(state, width=300, height=240)
    layout = maps.build(fields_of(ds, 0))
    pane = pn.pane.HoloViews(layout, renderer=canvas_renderer(), linked_axes=False)
    pane.get_root(bokeh.document.Document())
    assert set(maps._plots) == {"raw_sm", "raw_gap", "filled_sm", "filled_mark", "ascat",
                                "diff"}
    assert all(fig.output_backend == "canvas" for fig in maps._figs.values())
    assert maps.update(fields_of(ds, 5)) == "fast"
    fast = {k: np.array(image_source(p).data["image"][0]) for k, p in maps._plots.items()}
    assert maps._figs["raw"].title.text.startswith("Raw") and "2015-06-06" in \
        maps._figs["raw"].title.text
    # now let HoloViews re-render the same (silently updated) frame itself
    maps.frame.event(key=maps.frame.key)
    for k, p in maps._plots.items():
        slow = np.array(image_source(p).data["image"][0])
        if k in ("raw_gap", "filled_mark"):  # sent as uint8 categories, 0 = clear
            assert fast[k].dtype == np.uint8
            slow = np.nan_to_num(slow, nan=0.0).astype(np.uint8)
        np.testing.assert_array_equal(np.isnan(fast[k]), np.isnan(slow), err_msg=k)
        np.testing.assert_allclose(fast[k], slow, rtol=1e-6, equal_nan=True, err_msg=k)
    # and the day really changed
    first = regrid_like(ds[schema.AMSR_SM].isel(time=0).values, ds.lat.values, ds.lon.values,
                        -100.0, 30.0, 8.0, 6.0, 32, 24)
    assert not np.allclose(fast["raw_sm"], first, equal_nan=True)


def test_a_drawn_box_stays_on_the_raw_map_while_the_maps_reload(ds):
    """The raw map's drag tool is a box select whose box stays drawn (``persistent``) once
    the mouse is up, until the maps of the new region replace it; no other map has one."""
    import bokeh.document
    import panel as pn
    from bokeh.models import BoxSelectTool

    from app.maps import canvas_renderer

    maps = MapSet(ExplorerState(GridInfo.from_dataset(ds)), width=300, height=240)
    pane = pn.pane.HoloViews(maps.build(fields_of(ds, 0)), renderer=canvas_renderer(),
                             linked_axes=False)
    pane.get_root(bokeh.document.Document())
    boxes = {name: [t for t in fig.tools if isinstance(t, BoxSelectTool)]
             for name, fig in maps._figs.items()}
    assert [t.persistent for t in boxes.pop("raw")] == [True]
    assert maps._figs["raw"].toolbar.active_drag in maps._figs["raw"].tools
    assert not any(boxes.values()), boxes


def test_a_new_map_is_one_entry(ds):
    """A fifth map given as one spec is built, updated on the fast path and exported."""
    import io

    import bokeh.document
    import matplotlib.image
    import panel as pn

    from app.export import maps_png
    from app.maps import canvas_renderer

    def const(f):  # a map of one value at the top of its limits: solid dark red
        return np.full(f.amsr.shape, 2.0 + f.date.day, np.float32)

    extra = MapSpec("extra", (Layer("extra_v", const, plots.SM_DIM),),
                    lambda f: f"Extra {f.date:%Y-%m-%d}", cmap="Reds", clim=(0.0, 1.0),
                    colorbar="Extra", units="-")
    state = ExplorerState(GridInfo.from_dataset(ds))
    maps = MapSet(state, width=300, height=240, maps=[*MAPS, extra])
    layout = maps.build(fields_of(ds, 0))
    assert len(layout) == len(MAPS) + 1
    pane = pn.pane.HoloViews(layout, renderer=canvas_renderer(), linked_axes=False)
    pane.get_root(bokeh.document.Document())
    assert "extra_v" in maps._plots and maps._figs["extra"].title.text == "Extra 2015-06-01"
    assert maps.update(fields_of(ds, 5)) == "fast"
    assert maps._figs["extra"].title.text == "Extra 2015-06-06"
    img = np.asarray(image_source(maps._plots["extra_v"]).data["image"][0])
    assert np.nanmax(img) == np.nanmin(img) == 8.0  # the new day's value, written fast
    png = matplotlib.image.imread(io.BytesIO(maps_png(fields_of(ds, 5), maps=maps.maps)))
    four = matplotlib.image.imread(io.BytesIO(maps_png(fields_of(ds, 5))))
    assert png.shape[0] > four.shape[0]  # a third row of maps
    red = (png[..., 0] > 0.35) & (png[..., 1] < 0.05) & (png[..., 2] < 0.1)
    assert red[four.shape[0]:].sum() > 10_000  # the extra map, solid "Reds" maximum
    assert red[:four.shape[0]].sum() < 100


@pytest.mark.parametrize("bbox", [(-100.0, 30.0, -84.0, 46.0), (-125.0, 5.0, -37.5, 67.5),
                                  (-100.0, 30.0, -60.0, 35.0)])
def test_a_maps_image_has_a_fixed_pixel_budget_and_the_regions_aspect(bbox):
    """The image a map is rasterized to: about the nominal frame's pixels whatever the
    region (the window's width plays no part), with the region's lon/lat aspect; the plot's
    aspect leaves its frame that aspect at the typical width."""
    from app.regrid import CHROME, TYPICAL_WIDTH, map_aspect, plot_aspect

    maps = MapSet(None)  # the state is read only when the maps are built
    w, h = maps.image_shape(bbox)
    budget = (maps.width - CHROME[0]) * (maps.height - CHROME[1])
    assert abs(w * h / budget - 1) < 0.02
    assert abs((w / h) / map_aspect(bbox) - 1) < 0.02
    frame_w = TYPICAL_WIDTH - CHROME[0]
    frame_h = TYPICAL_WIDTH / plot_aspect(bbox) - CHROME[1]
    assert abs((frame_w / frame_h) / map_aspect(bbox) - 1) < 1e-9
