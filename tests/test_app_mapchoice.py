"""The fourth map as a selector, value ± SD and reasons in the hover, the 1-SD band, fills
under frozen ground hidden by default (issues 12, 13, 14, 16): the pure parts, no browser."""

from __future__ import annotations

import dataclasses
import json

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from app import plots
from app.days import DayFields
from app.mapspecs import (
    MAPS,
    ascat_matched,
    choice_options,
    layer_arrays,
    map_titles,
    no_ascat_note,
    resolve,
)
from app.state import ExplorerState, GridInfo
from data_catalog import schema

hv.extension("bokeh")


@pytest.fixture(scope="module")
def ds():
    return schema.mock_grid_dataset(ntime=10, nlat=24, nlon=32, start="2015-06-01",
                                    gap_fraction=0.5)


def fields_of(ds, k: int, **kw) -> DayFields:
    day = ds.isel(time=k)
    truth = day[schema.TRUTH_SM].values.astype(np.float32)
    f = DayFields(date=pd.Timestamp(day.time.values), lat=ds.lat.values, lon=ds.lon.values,
                  amsr=day[schema.AMSR_SM].values, gap=day[schema.GAP_MASK].values,
                  ascat=day[schema.ASCAT_SM].values, land=ds[schema.LAND].values,
                  sensor=int(day.sensor), truth=truth, filled=truth + np.float32(0.01))
    return dataclasses.replace(f, **kw)


def test_choices_default_to_the_truth_on_the_demo_and_the_uncertainty_elsewhere():
    demo, real = choice_options(True), choice_options(False)
    assert list(demo)[0] == "diff" and "diff_observed" not in demo
    assert list(real)[0] == "uncertainty" and "diff" not in real
    assert {"uncertainty", "minus_ascat"} <= set(demo) & set(real)
    assert real["diff_observed"] == "Filled − observed"
    assert demo["uncertainty"] == "Uncertainty (1 SD of the error)"


def test_only_the_chosen_map_is_computed(ds):
    f = fields_of(ds, 1)
    assert [m.name for m in resolve(MAPS, f)] == ["raw", "filled", "ascat", "diff"]
    got = layer_arrays(f, choice="uncertainty")
    assert "uncertainty" in got and "diff" not in got and "minus_ascat" not in got
    # a choice the source cannot show falls back to its default
    assert resolve(MAPS, f, "diff_observed")[-1].name == "diff"


def test_uncertainty_layer_is_the_sd_of_the_fill(ds):
    f = fields_of(ds, 2, show_frozen=True)  # nothing hidden
    assert np.isnan(layer_arrays(f, choice="uncertainty")["uncertainty"]).all()
    assert "none with this fill" in map_titles(f, choice="uncertainty")["uncertainty"]
    sd = np.linspace(0.01, 0.06, f.amsr.size, dtype=np.float32).reshape(f.amsr.shape)
    f = dataclasses.replace(f, uncertainty=sd)
    np.testing.assert_array_equal(layer_arrays(f, choice="uncertainty")["uncertainty"], sd)
    assert map_titles(f, choice="uncertainty")["uncertainty"] == \
        "Uncertainty (1 SD) 2015-06-03 (m3 m-3)"
    spec = resolve(MAPS, f, "uncertainty")[-1]
    assert spec.cmap == plots.SD_CMAP and spec.clim == plots.SD_CLIM  # its own scale


def test_filled_minus_ascat_matches_ascat_to_amsr(ds):
    f = fields_of(ds, 3, show_frozen=True)
    truth = f.truth.astype(np.float64)
    # ASCAT an exact linear function of the truth, AMSR the truth where observed: mean/SD
    # matching to AMSR recovers the truth everywhere ASCAT is, so filled - ASCAT = 0.01
    amsr = np.where(f.gap == schema.OBSERVED, truth, np.nan).astype(np.float32)
    f = dataclasses.replace(f, amsr=amsr, ascat=(200.0 * truth + 5.0).astype(np.float32),
                            truth=None)
    matched, ref = ascat_matched(f)
    assert ref == "AMSR"
    np.testing.assert_allclose(matched, truth, atol=1e-5)
    diff = layer_arrays(f, choice="minus_ascat")["minus_ascat"]
    np.testing.assert_allclose(diff, 0.01, atol=1e-5)
    assert "matched to AMSR" in map_titles(f, choice="minus_ascat")["minus_ascat"]
    # too few observed cells: matched to the fill instead, and said so
    few = dataclasses.replace(f, amsr=np.full_like(amsr, np.nan))
    assert ascat_matched(few)[1] == "filled"


def test_no_ascat_is_said_in_the_titles(ds):
    f = fields_of(ds, 4, ascat=np.full((24, 32), np.nan, np.float32))
    assert no_ascat_note(f) == "none in this source or day"
    early = dataclasses.replace(f, date=pd.Timestamp("2005-06-01"))
    assert no_ascat_note(early) == "AMSR-E years before 2007"
    assert map_titles(early)["filled"].endswith(
        "filled without ASCAT (AMSR-E years before 2007)")
    assert "no ASCAT" in map_titles(f, choice="minus_ascat")["minus_ascat"]
    assert no_ascat_note(fields_of(ds, 4)) == "" and "without ASCAT" not in \
        map_titles(fields_of(ds, 4))["filled"]


def test_fills_under_frozen_ground_are_hidden_unless_shown(ds):
    f = fields_of(ds, 5)
    gap = f.gap.copy()
    land = np.asarray(f.land, bool)
    frozen = np.zeros_like(land)
    frozen[:5][land[:5]] = True
    gap[frozen] = schema.FROZEN
    f = dataclasses.replace(f, gap=gap)
    hidden = layer_arrays(f)
    assert np.isnan(hidden["filled_sm"][frozen]).all()
    assert np.isfinite(hidden["filled_sm"][~frozen & land]).any()
    assert (hidden["filled_mark"][frozen] == 2).all()  # a gap category of its own
    assert np.isnan(hidden["diff"][frozen]).all()
    shown = layer_arrays(dataclasses.replace(f, show_frozen=True))
    np.testing.assert_array_equal(shown["filled_sm"][frozen], f.filled[frozen])
    assert (shown["filled_mark"][frozen] == 1).all()
    spec = resolve(MAPS, f)[1].layers[1]
    assert spec.names[2] == plots.FROZEN_HIDDEN


def test_reason_text_and_hover_text():
    b = schema.REASON_BIT
    bits = b["amsr_missing_rfi"] | b["ascat_used"] | b["later_days_used"]
    assert plots.reason_text(bits) == "filled: RFI, ASCAT used, look-ahead"
    assert plots.reason_text(0) == "observed"
    assert plots.reason_text(b["amsre_rescaled"]) == "observed, AMSR-E rescaled"
    assert plots.reason_text(b["amsr_missing_frozen_ground"]) == "filled: frozen ground"
    assert plots.hover_text(0.2312, 0.0421, bits) == \
        "0.231 ± 0.042 m3 m-3 · filled: RFI, ASCAT used, look-ahead"
    assert plots.hover_text(0.2312) == "0.231 m3 m-3"
    assert "gap category" in plots.hover_text(float("nan"), 0.04, bits)
    # every reason bit has a short name of its own
    names = {plots.reason_text(f.value) for f in schema.REASON_FLAGS}
    assert len(names) == len(schema.REASON_FLAGS)


def test_detail_codes_pack_sd_and_reasons_south_row_first():
    lat, lon = np.array([30.375, 30.125]), np.array([-99.875, -99.625, -99.375])  # north 1st
    sd = np.array([[0.042, np.nan, 0.9], [0.0, 0.001, 0.01]])
    reasons = np.array([[33, 0, 1], [0, 128, 255]], np.uint8)
    d = plots.detail_data(lat, lon, sd, reasons)
    code = d["code"][0].reshape(2, 3)
    np.testing.assert_array_equal(code[1] & 255, [42, plots.NO_SD, 254])  # capped
    np.testing.assert_array_equal(code[1] >> 8, [33, 0, 1])
    np.testing.assert_array_equal(code[0] >> 8, [0, 128, 255])
    np.testing.assert_allclose(d["grid"][0], [-100.0, 30.0, 0.25, 0.25, 2, 3, 1])
    assert plots.detail_data(lat, lon, None, None)["code"][0].size == 0
    js = plots.hover_js(plots.SM_DIM, detail=True)
    assert "±" in js and json.dumps(plots.reason_text(33)) in js


def test_sd_band_and_frozen_days_in_the_series():
    idx = pd.date_range("2015-06-01", periods=6)
    frame = pd.DataFrame({"filled": [0.2, 0.21, 0.22, np.nan, 0.24, 0.25],
                          "filled_sd": [0.02, np.nan, 0.03, 0.03, 0.01, 0.02],
                          "frozen": [False, False, False, False, True, True],
                          "ascat": np.nan, "gap": False}, index=idx)
    lo, hi = plots.sd_band(frame)
    np.testing.assert_allclose(lo, [0.18, np.nan, 0.19, np.nan, 0.23, 0.23])
    np.testing.assert_allclose(hi, [0.22, np.nan, 0.25, np.nan, 0.25, 0.27])
    assert plots.sd_band(frame.drop(columns="filled_sd")) is None  # an old cache entry
    assert plots.frozen_fills(frame).tolist() == [False] * 4 + [True, True]

    def labels(p):
        return [el.label for el in p]

    hidden = plots.series_plot(frame, idx[2])
    assert "Filled ± 1 SD" in labels(hidden) and "Filled under frozen ground" not in \
        labels(hidden)
    curve = next(el for el in hidden if el.label == "Filled (ConvLSTM)")
    assert np.isnan(curve.dimension_values(1)[4:]).all()  # dropped while hidden
    shown = plots.series_plot(frame, idx[2], show_frozen=True)
    assert "Filled under frozen ground" in labels(shown)
    assert "no ascat in this window" in hidden.opts.get().kwargs["title"].lower()
    no_sd = plots.series_plot(frame.drop(columns="filled_sd"), idx[2])
    assert "Filled ± 1 SD" not in labels(no_sd)


def test_the_map_choice_and_the_frozen_toggle_go_through_the_url(ds):
    grid = GridInfo.from_dataset(ds)
    state = ExplorerState(grid, map_choices=choice_options(True))
    assert state.to_query()["map"] == "" and state.to_query()["frozen"] == ""
    assert state.request_map("uncertainty") == [] and state.fourth == "uncertainty"
    assert state.request_map("<b>x</b>") and state.fourth == "uncertainty"
    state.show_frozen = True
    q = state.to_query()
    assert q["map"] == "uncertainty" and q["frozen"] == "1"
    other = ExplorerState(grid, map_choices=choice_options(True))
    assert other.apply_query(q) == [] and other.fourth == "uncertainty" and other.show_frozen
    real = ExplorerState(grid, map_choices=choice_options(False))
    msgs = real.apply_query({"map": "diff", "frozen": "yes"})
    assert len(msgs) == 2 and real.fourth == "" and not real.show_frozen


def test_mapset_shows_the_choice_and_updates_the_hover_detail_in_place(ds):
    import bokeh.document
    import panel as pn

    from app.maps import MapSet, canvas_renderer

    state = ExplorerState(GridInfo.from_dataset(ds), map_choices=choice_options(True))
    state.fourth = "uncertainty"
    maps = MapSet(state, width=300, height=240)
    sd = np.full((24, 32), 0.03, np.float32)
    reasons = np.full((24, 32), 33, np.uint8)
    layout = maps.build(fields_of(ds, 0, uncertainty=sd, reasons=reasons))
    pane = pn.pane.HoloViews(layout, renderer=canvas_renderer(), linked_axes=False)
    pane.get_root(bokeh.document.Document())
    assert [m.name for m in maps.maps][-1] == "uncertainty"
    assert maps._figs["uncertainty"].title.text.startswith("Uncertainty (1 SD) 2015-06-01")
    src = maps._details["filled_sm"]
    assert (src.data["code"][0] & 255 == 30).all() and (src.data["code"][0] >> 8 == 33).all()
    assert maps.update(fields_of(ds, 1, uncertainty=sd * 2, reasons=reasons)) == "fast"
    assert (src.data["code"][0] & 255 == 60).all()  # the new day's SD, written in place
    assert maps.update(fields_of(ds, 2)) == "fast"  # no SD: the hover shows the value only
    assert src.data["code"][0].size == 0


def test_the_selected_point_is_marked_on_every_map_in_place(ds):
    import bokeh.document
    import panel as pn

    from app.maps import MapSet, canvas_renderer

    maps = MapSet(ExplorerState(GridInfo.from_dataset(ds)), width=300, height=240)
    layout = maps.build(fields_of(ds, 0))
    pane = pn.pane.HoloViews(layout, renderer=canvas_renderer(), linked_axes=False)
    pane.get_root(bokeh.document.Document())
    assert set(maps._mark_srcs) == {m.name for m in maps.maps}
    lat, lon = float(ds.lat[3]), float(ds.lon[4])
    maps.mark(lat, lon)
    for src in maps._mark_srcs.values():
        assert list(src.data["lon"]) == [lon] and list(src.data["lat"]) == [lat]
    assert maps.update(fields_of(ds, 1)) == "fast"  # a date step keeps it
    assert all(list(s.data["lon"]) == [lon] for s in maps._mark_srcs.values())
    maps.mark(float("nan"), float("nan"))  # no selection: no mark
    assert all(len(s.data["lon"]) == 0 for s in maps._mark_srcs.values())
    maps.mark(lat, lon)
    # another region clears it
    small = ds.isel(lat=slice(0, 12), lon=slice(0, 16))
    maps.build(dataclasses.replace(fields_of(ds, 0), lat=small.lat.values,
                                   lon=small.lon.values, amsr=fields_of(ds, 0).amsr[:12, :16],
                                   gap=fields_of(ds, 0).gap[:12, :16],
                                   ascat=fields_of(ds, 0).ascat[:12, :16],
                                   land=fields_of(ds, 0).land[:12, :16],
                                   truth=fields_of(ds, 0).truth[:12, :16],
                                   filled=fields_of(ds, 0).filled[:12, :16]))
    assert maps._mark is None
