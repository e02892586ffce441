"""The page's layout (issue 16): maps that grow with the window and keep the region's
lon/lat aspect, sidebar widgets inside the sidebar."""

from __future__ import annotations

from bench.serving import SMALL_DATE
from tests.browser.conftest import figures, maps_of, open_app, wait_for

#: boxes of the sidebar's controls (through Bokeh's shadow roots) that reach past the
#: sidebar, or whose text is cut off inside them
SIDEBAR_OVERFLOW = """() => {
  const find = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('sidebar')) return el;
      if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; }
    }
    return null;
  };
  const side = find(document);
  const s = side.getBoundingClientRect();
  const seen = [], over = [];
  const visit = (root) => {
    for (const el of root.querySelectorAll('input, select, button, label, .noUi-target')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;  // hidden
      seen.push(el.tagName);
      const cut = el.tagName === 'LABEL' && el.scrollWidth > el.clientWidth + 1;
      if (r.left < s.left - 0.5 || r.right > s.right + 0.5 || cut)
        over.push(`${el.tagName} '${(el.innerText || el.value || '').slice(0, 30)}' ` +
                  `${Math.round(r.left)}..${Math.round(r.right)}`);
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) visit(el.shadowRoot);
  };
  visit(side.shadowRoot || side);
  return {left: s.left, right: s.right, seen: seen.length, over: over};
}"""

#: the small world's region (W, S, E, N): 10 x 8 degrees
REGION = (-100.0, 30.0, -90.0, 38.0)
ASPECT = (REGION[2] - REGION[0]) / (REGION[3] - REGION[1])


def _frame_aspect(page) -> float:
    """Width over height of the raw map's frame, from the screen positions of the
    region's corners."""
    w, s, e, n = REGION
    sw = maps_of(figures(page, w, s))[0]
    ne = maps_of(figures(page, e, n))[0]
    return (ne["px"] - sw["px"]) / (sw["py"] - ne["py"])


def test_maps_grow_with_the_window_and_the_sidebar_holds_its_widgets(server, page):
    errors = open_app(page, server["url"], f"?date={SMALL_DATE}")
    widths = {}
    for vw, vh in ((1280, 800), (1600, 1000)):
        page.set_viewport_size({"width": vw, "height": vh})
        side = page.evaluate(SIDEBAR_OVERFLOW)
        main = vw - side["right"]  # the main area: right of the sidebar

        def filled(figs, main=main):  # two maps a row across most of the main area, and
            # (plate carrée) a degree as wide as it is high, within a few per cent: waited
            # for, as Bokeh lays the maps out again after the resize over a few frames
            m = maps_of(figs)
            return len(m) == 4 and m[1]["left"] + m[1]["width"] - m[0]["left"] > 0.9 * main \
                and abs(_frame_aspect(page) / ASPECT - 1) < 0.08

        maps = maps_of(wait_for(page, filled, f"maps across the main area at {vw} px with "
                                              "the region's aspect"))
        widths[vw] = maps[0]["width"]
        assert maps[0]["top"] == maps[1]["top"] and maps[2]["top"] > maps[0]["top"]
        assert side["seen"] > 20 and side["over"] == [], side
    assert widths[1600] > widths[1280] * 1.2, widths
    assert errors == []
