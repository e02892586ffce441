"""Forged browser values are refused before Panel converts them (app/guard.py), no browser.

``_process_events`` is the path of every value a browser sends to a Panel widget; the
first tests pin that private hook, so they fail when Panel changes it.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math

import pandas as pd
import panel as pn
import pytest
from panel.reactive import Syncable

from app import guard
from app.state import read_query

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_panel_still_routes_browser_values_through_process_events():
    assert list(inspect.signature(Syncable._process_events).parameters) == ["self", "events"]
    # and plain Panel still fails on a forged option: the reason app.guard exists
    plain = pn.widgets.Select(options=["a", "b"], value="a")
    with pytest.raises(ValueError):
        plain._process_events({"value": "<img src=x>"})


def _guarded(widget):
    seen: list[str] = []
    widget.refused = seen.append
    return widget, seen


FORGED = [
    (lambda: guard.Select(label="Source", options=["demo", "lprm"], value="demo"),
     ["nope", "<img src=x onerror=alert(1)>", "x" * 5000, "", 3], "lprm", "lprm"),
    (lambda: guard.Select(label="Checkpoint", options={"default": "", "AMSR2 base": "amsr2"},
                          value=""),
     ["/etc/passwd", "../amsr2.pt", "amsre"], "amsr2", "amsr2"),
    (lambda: guard.DatePicker(label="Date", value=dt.datetime(2015, 6, 1),
                              start=dt.date(2003, 1, 1), end=dt.date(2023, 12, 31)),
     ["garbage", "2015-13-45", "1e300", "2099-01-01", "2015-06-01T00:00", "9" * 5000, None,
      1e300], "2015-06-03", dt.datetime(2015, 6, 3)),
    (lambda: guard.DateSlider(label="Record", value=dt.date(2015, 6, 1),
                              start=dt.date(2003, 1, 1), end=dt.date(2023, 12, 31)),
     [1e300, float("nan"), -1e300, float("inf"), 0.0, "garbage"],
     pd.Timestamp("2015-06-03").value / 1e6, dt.date(2015, 6, 3)),
    (lambda: guard.RangeSlider(label="Colour limits", start=0.0, end=1.0, value=(0.0, 0.5)),
     [[float("nan"), 0.5], [0.0, 1e300], [0.6, 0.2], "x", [0.1]], [0.1, 0.4], (0.1, 0.4)),
    (lambda: guard.FloatInput(label="W", value=-100.0, start=-180.0, end=180.0),
     [-1e308, float("nan"), 1e308, 181.0], -98.0, -98.0),
    (lambda: guard.Checkbox(label="Show gap mask", value=True), ["yes", 1, None], False, False),
]


@pytest.mark.parametrize("make, forged, good, applied", FORGED,
                         ids=["select", "checkpoint", "datepicker", "dateslider",
                              "rangeslider", "floatinput", "checkbox"])
def test_forged_values_are_refused_with_a_message_and_valid_ones_apply(make, forged, good,
                                                                       applied):
    w, seen = _guarded(make())
    prop = "active" if isinstance(w, pn.widgets.Checkbox) else "value"
    before = w.value
    for value in forged:
        w._process_events({prop: value})
        assert _same(w.value, before), (value, w.value)
        assert seen and w.label in seen[-1] and "\n" not in seen[-1], (value, seen)
        assert len(seen[-1]) < 300
    n = len(seen)
    w._process_events({prop: good})
    assert len(seen) == n and _same(w.value, applied)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b or tuple(a) == tuple(b) if isinstance(a, tuple | list) else a == b


def test_read_only_table_refuses_edits_and_foreign_rows():
    w, seen = _guarded(guard.Tabulator(pd.DataFrame({"id": ["A", "B"]}), disabled=True,
                                       label="Station table"))
    w._process_events({"indices": [7]})
    w._process_events({"indices": ["x"]})
    assert len(seen) == 2 and w.selection == []
    w._process_events({"indices": [1]})
    assert w.selection == [1] and len(seen) == 2


def test_a_disabled_download_refuses_a_forged_click():
    calls = []
    w, seen = _guarded(guard.FileDownload(callback=lambda: calls.append(1), filename="x.csv",
                                          disabled=True))
    w.disabled_reason = "Compute the network table first"
    w._process_events({"clicks": 1})
    assert calls == [] and seen == ["Compute the network table first."]


def test_location_parses_no_overlong_value():
    loc = guard.Location(search="?date=" + "9" * 5000 + "&station=007&region=1,2,3,4")
    q = loc.query_params  # plain Panel raises ValueError (int of 5,000 digits)
    assert "date" not in q and q["region"] == "1,2,3,4"
    loc._process_events({"search": "?date=" + "1" * 5000})  # the browser reports its URL
    with pytest.raises(ValueError):
        pn.io.location.Location(search="?date=" + "9" * 5000).query_params  # noqa: B018


def test_read_query_keeps_strings_and_refuses_overlong_values():
    q, msgs = read_query("?station=007&date=" + "9" * 5000 + "&utm_source=x&region=1,2,3,4")
    assert q == {"station": "007", "region": "1,2,3,4"}
    assert len(msgs) == 1 and "5,000 characters" in msgs[0] and "\n" not in msgs[0]
    q, msgs = read_query("?" + "&".join(f"a{i}=1" for i in range(100)))
    assert q == {} and msgs


def test_checkpoint_choices_are_labels_and_keys_never_paths(tmp_path, monkeypatch):
    import shutil

    from app.checkpoints import checkpoint_choices
    from data_catalog.locations import checkpoint_dir as default_checkpoint_dir
    from tests.test_model_checkpoint_file import flip_bytes

    for name in ("amsr2.pt", "amsre.pt"):
        shutil.copy(default_checkpoint_dir() / name, tmp_path / name)
    shutil.copy(default_checkpoint_dir() / "amsr2.pt", tmp_path / "damaged.pt")
    flip_bytes(tmp_path / "damaged.pt")
    monkeypatch.setenv("GAPFILL_CHECKPOINTS", str(tmp_path))
    choices = checkpoint_choices()
    assert set(choices) == {"", "amsr2", "amsre"}  # the damaged file is left out
    assert choices["amsr2"] == ("AMSR2 base model (trained 2013-2020)",
                                str(tmp_path / "amsr2.pt"))
    assert choices["amsre"][0] == "AMSR-E transferred from AMSR2 (trained 2003-2008)"
    assert not any("/" in key or "/" in label for key, (label, _) in choices.items())
