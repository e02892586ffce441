"""``gapfill demo-data``: build the demo world store (see :mod:`data_catalog.demo`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from data_catalog import demo, locations


def _size_on_disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else locations.demo_world()
    params = demo.DemoParams(args.west, args.south, args.east, args.north, args.res,
                             args.start, args.end, args.seed, args.stations).normalised()
    if (not args.force and demo.store_matches(out, params)):
        print(f"demo world already built with these parameters: {out} "
              "(use --force to rebuild)")
        return 0
    t0 = time.perf_counter()
    path = demo.build_demo_world(out, west=params.west, south=params.south, east=params.east,
                                 north=params.north, res=params.res, start=params.start,
                                 end=params.end, seed=params.seed,
                                 n_stations=params.n_stations, progress=not args.quiet,
                                 force=args.force)
    elapsed = time.perf_counter() - t0
    size = _size_on_disk(path) / 2**20
    print(f"demo world written to {path} in {elapsed:.1f} s ({size:.1f} MiB on disk)")
    return 0


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add ``demo-data`` to the ``gapfill`` subcommands."""
    d = demo.DemoParams()
    p = sub.add_parser(
        "demo-data", parents=[common],
        help="build the synthetic demo world (zarr) that the app and model use by default",
        description="Build the deterministic synthetic demo world: true soil moisture, "
                    "AMSR-E/AMSR2 and ASCAT observations with realistic gaps, ISMN-like "
                    "stations. Skipped when the store exists with the same parameters.",
    )
    p.add_argument("--out", metavar="PATH", default=None,
                   help=f"store to write (default: {locations.help_default('GAPFILL_DEMO')})")
    p.add_argument("--west", type=float, default=d.west, help="west edge, degrees (%(default)s)")
    p.add_argument("--south", type=float, default=d.south, help="south edge (%(default)s)")
    p.add_argument("--east", type=float, default=d.east, help="east edge (%(default)s)")
    p.add_argument("--north", type=float, default=d.north, help="north edge (%(default)s)")
    p.add_argument("--res", type=float, default=d.res, help="grid spacing, degrees (%(default)s)")
    p.add_argument("--start", default=d.start, help="first day (%(default)s)")
    p.add_argument("--end", default=d.end, help="last day (%(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (%(default)s)")
    p.add_argument("--stations", type=int, default=d.n_stations,
                   help="number of stations (%(default)s)")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if the store exists (replaces it)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
