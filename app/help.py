"""The About panel: the method, the maps, the gap categories, the demo world, citations."""

from __future__ import annotations

import panel as pn

from app import plots

ABOUT = f"""
**Method.** AMSR-E/AMSR2 surface soil moisture has gaps (radio-frequency interference,
dense vegetation, frozen ground, swath gaps, failed retrievals) and a gap year with no
AMSR in orbit (2011-10-04 to 2012-07-01). A ConvLSTM reads the days before (AMSR where
observed, ASCAT, the gap mask) and predicts every cell; observed cells keep the
observation. The model is trained on AMSR2 and transfer-learned to AMSR-E
(Sivaprasad et al. 2025).

**The maps.** *Raw*: AMSR as observed, gap categories drawn over it (toggle "Show gap
mask"). *ConvLSTM filled*: the model's field; pale cells are filled, the rest observed;
its title says where the fill comes from (series store, cache, period fill, auto-fill,
just computed); hover a cell for its value ± 1 SD and why it was filled (RFI, ASCAT
used, look-ahead...). *ASCAT*: the active input, % of saturation. The fourth map is
chosen beside the maps: *Filled − truth (demo)* (the error of the fill; on the demo
world only), *Filled − observed* (sources without a truth), *Uncertainty (1 SD of the
error)* of the fill (the model's error model; none for period fills), or *Filled −
ASCAT*, ASCAT mean/SD-matched to the observed AMSR cells of the region that day (to the
filled field when too few were observed): a check that needs no truth. The station and
pixel series shade the fill ± 1 SD where the output carries one.

**Fills under frozen ground** are hidden by default (drawn as the gap "frozen ground,
filled value hidden"; the series drop them): no radiometer measures frozen soil moisture
and the model's fills there correlate with the truth at only R about 0.5. "Show fills
under frozen ground" draws them (hollow markers in the series).

**No ASCAT**: before 2007 (AMSR-E years) and in sources without it the fill rests on
AMSR and the model alone; the page, the filled map's title and the series say so.

**Gap categories.** {", ".join(plots.GAP_NAMES.values())}: colours chosen apart from the
soil-moisture scale and for colour-blind readers; hover a cell to read its category.

**The demo world.** A synthetic world whose true soil moisture is known ("truth (demo)"),
with AMSR and ASCAT errors calibrated to published figures; stations sample the truth
with in-situ noise. Real products (LPRM, C3S) show their raw field; to fill them,
assemble them into a world (`gapfill assemble`).

**Filling.** "Run inference" fills the shown day; "Fill this period" fills the shown
region over days you choose (the engine of `gapfill build-series`, in the background,
with progress and cancel); auto-fill fills each day you step to on small regions.

**Citations and licences.** Sivaprasad et al. (2025), IEEE JSTARS,
doi:10.1109/JSTARS.2025.3557956. ASCAT: EUMETSAT H SAF. ESA CCI / C3S soil moisture:
Copernicus licence. LPRM: NASA GES DISC. ISMN data may not be redistributed.
"""


def about_card() -> pn.Card:
    """A collapsed card at the foot of the sidebar."""
    return pn.Card(pn.pane.Markdown(ABOUT, styles={"font-size": "small"},
                                    css_classes=["about-text"]),
                   title="About", collapsed=True, width=300, css_classes=["about"])
