"""The demo world: a deterministic, physically plausible synthetic soil-moisture world.

Real multi-year AMSR grids cannot be downloaded here, so the project ships a generator
for a world that behaves like one (Sivaprasad et al. 2025 fill AMSR-E/AMSR2 gaps over the
USA; the default region is the US Southern Great Plains to the Gulf coast).  It imitates
published sensor figures where there are some; each module's docstring says which
figure each of its numbers imitates, and which numbers are model choices.

Where to look:

======================  ==================================================================
module                  what it holds
======================  ==================================================================
:mod:`.land`            land/sea mask (Natural Earth 50 m), soil porosity and residual
                        water, field capacity, wilting point, vegetation, elevation
:mod:`.weather`         daily rain from moving synoptic and convective storm fields, and
                        a temperature proxy (rain to snow, frozen ground)
:mod:`.water_balance`   the truth: a two-layer bucket per cell (infiltration, runoff,
                        drainage, evaporation, snow, frozen soil), m3 m-3
:mod:`.sensors`         AMSR-E (2002-06-01 .. 2011-10-03), AMSR2 (from 2012-07-02) and
                        ASCAT (from 2007-01-01): calibration, retrieval errors, orbits
:mod:`.gaps`            the gap mask: invalid retrievals, dense vegetation, RFI hot spots,
                        frozen ground, swath gaps and the gap year, not-land; ASCAT's gaps
:mod:`.stations`        ISMN-like stations: hourly point series, outages, ISMN flags
:mod:`.world`           the parameters (:class:`DemoParams`), the assembly of one world
                        and its generation in time blocks
:mod:`.store`           the zarr store: build (atomic), check, open; generator version
:mod:`.random_fields`   seeded streams, smooth fields, AR(1) series, drifting fields
======================  ==================================================================

The command line is ``gapfill demo-data`` (:mod:`data_catalog.demo_cli`).
"""

from data_catalog.demo.stations import NETWORK, STATION_FLAGS
from data_catalog.demo.store import (
    CITATION,
    GENERATOR,
    STATIONS_GROUP,
    VERSION,
    build_demo_world,
    default_demo_path,
    open_demo_stations,
    open_demo_world,
    store_matches,
)
from data_catalog.demo.world import DemoParams
from data_catalog.locations import REPO

__all__ = [
    "CITATION",
    "GENERATOR",
    "NETWORK",
    "REPO",
    "STATIONS_GROUP",
    "STATION_FLAGS",
    "VERSION",
    "DemoParams",
    "build_demo_world",
    "default_demo_path",
    "open_demo_stations",
    "open_demo_world",
    "store_matches",
]
