"""Hostile links and forged widget values: what a browser sends is text, checked, refused.

* an HTML payload through each URL parameter and each text-like widget is shown as text
  and never runs;
* huge numbers and over-long values in the URL give a working page with a message;
* values forged through the Bokeh document (what any page script or websocket client can
  send) are refused with a specific message, the widget is set back to the server's
  value, and the state (maps, URL) is unchanged;
* the checkpoint selector carries labels, never a server path.

The session server's log is checked for the generic handler's line at the end
(``conftest.server``): no value sent here may reach it.
"""

from __future__ import annotations

import math
from urllib.parse import quote

import pytest

from bench.serving import SMALL_DATE
from tests.browser.conftest import figures, maps_of, open_app

#: an HTML payload whose handler, if the browser ever parsed it, records that it ran
PAYLOAD = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'

#: the text the page should show of it (part of the payload, as a user would read it)
SHOWN = 'onerror="window.__xss'

#: finds a Bokeh model by its title (widgets) or label (checkbox, buttons), or by a CSS
#: class ("css:NAME"), and reads or writes one of its properties; "NaN" is sent as NaN
MODEL_JS = """
([key, prop, value, write]) => {
  const hit = (m) => key.startsWith('css:')
      ? (m.css_classes || []).includes(key.slice(4))
      : (typeof m.title === 'string' && m.title === key) ||
        (typeof m.label === 'string' && m.label === key);
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (!hit(m) || !(prop in m)) continue;
      if (!write) {
        let v;
        try { v = m[prop] } catch (e) { return null }  // an unset property
        return (typeof v === 'number' && Number.isNaN(v)) ? 'NaN' : v;
      }
      const fix = (x) => x === 'NaN' ? NaN : x;
      m[prop] = Array.isArray(value) ? value.map(fix) : fix(value);
      return true;
    }
  }
  return '__missing__';
}
"""


def _xss_ran(page) -> bool:
    return bool(page.evaluate("() => window.__xss || 0"))


def read(page, key: str, prop: str = "value"):
    return page.evaluate(MODEL_JS, [key, prop, None, False])


def forge(page, key: str, value, prop: str = "value") -> None:
    assert page.evaluate(MODEL_JS, [key, prop, value, True]) is True, (key, prop)


def _titles(page) -> list[str]:
    return [m["title"] for m in maps_of(figures(page))]


def _no_generic_error(page) -> None:
    assert page.get_by_text("Something went wrong").count() == 0


def refused(page, key: str, value, message: str, prop: str = "value") -> None:
    """Forge ``value``; the specific message shows, the widget returns to the server's
    value and the maps and URL stay as they were.

    ``value_throttled`` (a slider's release event) is not sent back by the server: the
    slider's ``value`` is what must stay.
    """
    shown = "value" if prop == "value_throttled" else prop
    before, titles, url = read(page, key, shown), _titles(page), page.url
    forge(page, key, value, prop)
    page.get_by_text(message).first.wait_for(timeout=30_000)
    for _ in range(60):  # the reset arrives on the next tick of the server
        if _same(read(page, key, shown), before):
            break
        page.wait_for_timeout(250)
    assert _same(read(page, key, shown), before), (key, value, read(page, key, shown), before)
    page.wait_for_timeout(300)
    assert _titles(page) == titles and page.url == url
    _no_generic_error(page)


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b)
    return a == b


# ---------------------------------------------------------------- HTML payloads

@pytest.mark.parametrize("param", ["station", "date", "source", "region"])
def test_html_in_a_url_parameter_is_shown_as_text(server, page, param):
    open_app(page, server["url"], f"?{param}={quote(PAYLOAD)}")
    # the notification quotes the payload: as text, so the text is found in the page
    page.get_by_text(SHOWN).first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # an image error handler would have fired by now
    assert not _xss_ran(page)


def test_html_through_every_text_widget_is_shown_as_text(server, page):
    open_app(page, server["url"], f"?date={SMALL_DATE}")
    for key in ("Source", "Region preset", "Checkpoint", "Date"):
        before = page.get_by_text(SHOWN).count()
        forge(page, key, PAYLOAD)
        for _ in range(120):
            if page.get_by_text(SHOWN).count() > before:
                break
            page.wait_for_timeout(250)
        assert page.get_by_text(SHOWN).count() > before, key
        page.wait_for_timeout(500)
        assert not _xss_ran(page), key
    _no_generic_error(page)


# ---------------------------------------------------------------- huge and over-long URLs

@pytest.mark.parametrize("query, message", [
    ("region=-1e308,-1e308,1e308,1e308", "outside -180..180"),
    ("region=nan,nan,nan,nan", "not a finite number"),
    ("region=" + "9" * 5000, "5,000 characters long"),
    ("date=" + "9" * 5000, "5,000 characters long"),
    ("date=1e300", "URL parameter date='1e300'"),
    ("date=-99999999999-01-01", "is not a day in the record"),
    ("station=" + "x" * 5000, "5,000 characters long"),
    ("source=" + "s" * 300, "300 characters long"),
], ids=["region-1e308", "region-nan", "region-5000", "date-5000", "date-1e300",
        "date-huge-year", "station-5000", "source-300"])
def test_huge_or_overlong_url_values_give_a_working_page_with_a_message(server, page, query,
                                                                        message):
    errors = open_app(page, server["url"], f"?{query}")  # waits for the four maps
    page.get_by_text(message).first.wait_for(timeout=30_000)
    assert len(maps_of(figures(page))) == 4
    _no_generic_error(page)
    assert errors == []


# ---------------------------------------------------------------- forged widget values

def test_forged_choices_are_refused(server, page):
    open_app(page, server["url"], f"?date={SMALL_DATE}")
    refused(page, "Source", "nope", "Source 'nope' is not one of the choices")
    refused(page, "Region preset", "atlantis", "Region preset 'atlantis' is not one of")
    refused(page, "Checkpoint", "/etc/passwd", "Checkpoint '/etc/passwd' is not one of")
    refused(page, "Checkpoint", "amsre", "Checkpoint 'amsre' is not one of")  # not served


def test_forged_dates_are_refused(server, page):
    open_app(page, server["url"], f"?date={SMALL_DATE}")
    refused(page, "Date", "garbage", "Date 'garbage' is not a day YYYY-MM-DD")
    refused(page, "Date", "2099-01-01", "Date 2099-01-01 is outside the record")
    refused(page, "Record", 1e300, "Record value 1e+300 ms is not a day between")
    refused(page, "Record", "NaN", "Record nan is not a finite number")
    refused(page, "Record", -1e300, "Record value -1e+300 ms is not a day between",
            prop="value_throttled")


def test_forged_numbers_are_refused(server, page):
    open_app(page, server["url"], f"?date={SMALL_DATE}")
    refused(page, "W", -1e308, "W -1e+308 is outside -180..180")
    refused(page, "S", "NaN", "S nan is not a finite number")
    refused(page, "N", 1e308, "N 1e+308 is outside -90..90")
    refused(page, "Colour limits (m3 m-3)", ["NaN", 0.5],
            "Colour limits (m3 m-3) low nan is not a finite number")
    refused(page, "Colour limits (m3 m-3)", [0.0, 1e300],
            "Colour limits (m3 m-3) high 1e+300 is outside 0..1")


def test_forged_table_rows_and_early_export_are_refused(server, page):
    downloads: list = []
    page.on("download", lambda d: downloads.append(d))
    open_app(page, server["url"], f"?date={SMALL_DATE}")
    assert read(page, "Export table (CSV)", "disabled") is True  # no table yet
    forge(page, "Export table (CSV)", 1, prop="clicks")
    page.get_by_text("Compute the network table first").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    assert downloads == [] and read(page, "Export table (CSV)", "data") in (None, "")
    titles = _titles(page)
    for forged, message in (("m.source.selected.indices = [999]", "is not rows of the table"),
                            ("m.source.data = {id: ['<b>edited</b>']}", "is read-only")):
        assert page.evaluate(f"""() => {{
          for (const doc of Bokeh.documents) for (const m of doc.all_models)
            if ((m.css_classes || []).includes('network-table')) {{ {forged}; return true }}
          return false }}""")
        page.get_by_text(message).first.wait_for(timeout=30_000)
    assert _titles(page) == titles
    _no_generic_error(page)


# ---------------------------------------------------------------- no server paths

def test_checkpoint_selector_carries_labels_not_paths(server, page):
    open_app(page, server["url"], f"?date={SMALL_DATE}")
    options = read(page, "Checkpoint", "options")
    assert options and options != "__missing__"
    flat = [str(x) for opt in options for x in (opt if isinstance(opt, list) else [opt])]
    assert not any("/" in x or "\\" in x or x.endswith(".pt") for x in flat), flat
    assert any("AMSR2 base model" in x for x in flat), flat  # from the checkpoint metadata
    ckpt_dir = str(server["log"].parent / "checkpoints")
    assert ckpt_dir not in page.content()
    # every property value of every model the browser holds
    assert ckpt_dir not in page.evaluate(DOCUMENT_TEXT_JS)


DOCUMENT_TEXT_JS = """() => {
  const out = [];
  const flat = (k, x) => (typeof x === 'function') ? null
      : (x && typeof x === 'object' && 'properties' in x && 'id' in x) ? x.id : x;
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    for (const name of Object.keys(m.properties || {})) {
      try { const v = m[name]; out.push(typeof v === 'string' ? v : JSON.stringify(v, flat)) }
      catch (e) {}  // unset or not serializable
    }
  }
  return out.join('\\n');
}"""
