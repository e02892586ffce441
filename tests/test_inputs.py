"""The shared checks of user values (data_catalog/inputs.py): known cases and, with
hypothesis, arbitrary strings and floats: a value or an InputError, nothing else."""

from __future__ import annotations

import datetime as dt
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_catalog import inputs, schema
from data_catalog.inputs import GridInfo, InputError

# ---------------------------------------------------------------- known cases


def test_numbers_are_checked_before_arithmetic():
    assert inputs.check_number("-98.5", "x") == -98.5
    assert inputs.check_number(np.float32(2.5), "x") == 2.5
    for bad in ("nan", "inf", "-1e308x", "", None, True, [1], float("nan"), 10**400,
                "1" * 5000):
        with pytest.raises(InputError):
            inputs.check_number(bad, "x")
    with pytest.raises(InputError, match="outside -180..180"):
        inputs.check_lon("-1e308")
    with pytest.raises(InputError, match="characters long"):
        inputs.check_number("9" * 5000, "x")  # refused by length, before float()


def test_whole_numbers():
    assert inputs.check_int("32", "n", 1, 100) == 32
    assert inputs.check_int(4.0, "n") == 4
    for bad in ("-5", "1.5", 1.5, "9" * 5000, float("inf")):
        with pytest.raises(InputError):
            inputs.check_int(bad, "n", 1, 100)


def test_regions_must_lie_in_the_world():
    assert inputs.check_region("-98,34,-94,38") == (-98.0, 34.0, -94.0, 38.0)
    assert inputs.check_region((-98, 34, -94, 38)) == (-98.0, 34.0, -94.0, 38.0)
    for bad in ("-1e308,-1e308,1e308,1e308", "-98,34,-94", "-98,34,-94,x",
                "-181,0,0,1", "0,91,1,92", "1,2,3,nan", ",".join(["1" * 50] * 4), 42):
        with pytest.raises(InputError):
            inputs.check_region(bad)
    assert inputs.parse_region("-100,30,-90,40") == (-100.0, 30.0, -90.0, 40.0)
    assert inputs.parse_region("1,2,3") is None


def test_dates_are_iso_days_of_bounded_length():
    assert inputs.check_date("2015-06-01T12:30") == pd.Timestamp("2015-06-01")
    assert inputs.check_date("2015-06-01T23:30-05:00") == pd.Timestamp("2015-06-02")
    assert inputs.check_date(dt.date(2015, 6, 1)) == pd.Timestamp("2015-06-01")
    assert inputs.check_date(np.datetime64("2015-06-01")) == pd.Timestamp("2015-06-01")
    with pytest.raises(InputError, match="month must be in 1..12"):
        inputs.check_date("2022-13-45")
    with pytest.raises(InputError, match="day is out of range"):
        inputs.check_date("2010-02-30")
    for bad in ("", "now", "1e300", "9" * 5000, 1e300, float("nan"), None, "June 1",
                np.datetime64("NaT"), "99999-01-01"):
        with pytest.raises(InputError):
            inputs.check_date(bad)
    assert inputs.parse_date("yesterday-ish") is None
    with pytest.raises(InputError, match="outside the record"):
        inputs.check_day_in("2031-01-01", "2003-01-01", "2023-12-31")


def test_choices_and_text():
    assert inputs.check_choice("demo", ["demo", "lprm"], "source") == "demo"
    with pytest.raises(InputError, match="is not one of 'demo'"):
        inputs.check_choice("<b>x</b>", ["demo"], "source")
    with pytest.raises(InputError, match="5,000 characters long"):
        inputs.check_text("x" * 5000, "station")


def test_messages_quote_a_value_shortened_on_one_line():
    msg = inputs.shown("a\nb" + "x" * 500)
    assert "\n" not in msg and len(msg) <= 60


def test_output_file(tmp_path):
    assert inputs.check_output_file(tmp_path / "x.nc") == tmp_path / "x.nc"
    with pytest.raises(InputError, match="does not exist"):
        inputs.check_output_file("/nonexistent_dir/x.nc")
    with pytest.raises(InputError, match="is a folder"):
        inputs.check_output_file(tmp_path)
    with pytest.raises(InputError):
        inputs.check_output_file("a\x00b")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # root writes anywhere
            with pytest.raises(InputError, match="no permission"):
                inputs.check_output_file(ro / "x.nc")
    finally:
        ro.chmod(0o700)


def test_yaml_problem_is_one_line_with_its_line_number():
    try:
        yaml.safe_load("sources:\n  a:\n    driver: x\n   bad: [1,\n")
    except yaml.YAMLError as exc:
        text = inputs.yaml_problem(exc)
    assert text.startswith("line ") and "\n" not in text


@pytest.fixture(scope="module")
def grid():
    with warnings.catch_warnings():  # the mock uses dayofyear, deprecated in pandas 3
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        ds = schema.mock_grid_dataset(ntime=30, nlat=40, nlon=64, start="2015-06-01")
    return GridInfo.from_dataset(ds)


def test_clamp_region_says_what_it_did(grid):
    box, note = inputs.clamp_region((-105.0, 35.0, -95.0, 38.0), grid.bounds)
    assert box == (-100.0, 35.0, -95.0, 38.0) and "clamped" in note
    assert inputs.clamp_region((-99.0, 35.0, -95.0, 38.0), grid.bounds)[1] == ""
    with pytest.raises(InputError, match="outside the data"):
        inputs.clamp_region((10.0, 10.0, 20.0, 20.0), grid.bounds)
    with pytest.raises(InputError, match="W < E"):
        inputs.clamp_region((-95.0, 35.0, -99.0, 38.0), grid.bounds)


def test_validate_region_never_overflows(grid):
    box, msgs = inputs.validate_region((-1e308, -1e308, 1e308, 1e308), grid, 10_000, 4)
    assert box is None and "outside -180..180" in msgs[0]


# ---------------------------------------------------------------- arbitrary input

#: what a URL, a forged widget value or a command line can carry
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.text(max_size=300), st.binary(max_size=300),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.text(alphabet="0123456789-.,eE+ :TZ", max_size=80),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6),
    st.lists(st.text(max_size=20), max_size=6),
    st.dates(), st.datetimes(),
)
CHECKS = [
    lambda v: inputs.check_text(v, "text"),
    lambda v: inputs.check_number(v, "number", -1.0, 1.0),
    lambda v: inputs.check_int(v, "count", 1, 3650),
    lambda v: inputs.check_choice(v, ["demo", "lprm"], "source"),
    lambda v: inputs.check_lon(v),
    lambda v: inputs.check_lat(v),
    lambda v: inputs.check_region(v),
    lambda v: inputs.check_date(v),
    lambda v: inputs.check_day_in(v, "2003-01-01", "2023-12-31"),
    lambda v: inputs.check_output_file(v),
]


def _value_or_message(fn, value):
    try:
        return fn(value)
    except InputError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and len(msg) < 400, msg
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=ANYTHING, which=st.integers(0, len(CHECKS) - 1))
def test_every_check_returns_a_value_or_a_message(value, which):
    _value_or_message(CHECKS[which], value)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                 st.text(max_size=40), st.integers()), min_size=0, max_size=5))
def test_region_of_a_grid_is_a_value_or_a_message(grid, values):
    box, msgs = inputs.validate_region(values, grid, 10_000, 4)
    if box is None:
        assert msgs and all("\n" not in m for m in msgs)
    else:
        gw, gs, ge, gn = grid.bounds
        w, s, e, n = box
        assert gw <= w < e <= ge and gs <= s < n <= gn


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60), number=st.floats(allow_nan=True, allow_infinity=True))
def test_text_made_of_a_float_is_a_value_or_a_message(text, number):
    for value in (text, repr(number), f"{number},{text},{number},{number}"):
        _value_or_message(inputs.check_region, value)
        _value_or_message(inputs.check_date, value)
        _value_or_message(lambda v: inputs.check_number(v, "n"), value)
