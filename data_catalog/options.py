"""Command-line options shared by the ``gapfill`` subcommands, written once: their types
(the validators of :mod:`data_catalog.inputs` as argparse ``type=``, so a command refuses
a bad value before any work starts, with the app's own message) and their help."""

from __future__ import annotations

import argparse

from data_catalog import inputs, locations

REGION_HELP = "region in degrees; write --region=W,S,E,N when W is negative"

#: A day YYYY-MM-DD, passed on as ISO text.
day = inputs.argument(inputs.check_date, "day", then=inputs.iso_day)


def count(lo: int):
    """A whole number >= ``lo``."""
    return inputs.argument(inputs.check_int, "value", lo)


def region(text: str) -> tuple[float, float, float, float]:
    """Four finite numbers inside the world with W < E and S < N."""
    w, s, e, n = inputs.argument(inputs.check_region, "region")(text)
    if not (w < e and s < n):
        raise argparse.ArgumentTypeError(f"expected W < E and S < N, got {text!r}")
    return w, s, e, n


def add_period(p: argparse.ArgumentParser, start: str | None, end: str | None,
               default: str) -> None:
    """``--start`` and ``--end`` (days, inclusive); ``default`` says what None means."""
    for name, value, what in (("start", start, "first"), ("end", end, "last")):
        shown = value if value is not None else default
        p.add_argument(f"--{name}", type=day, default=value,
                       help=f"{what} day, YYYY-MM-DD (default: {shown})")


def add_source(p: argparse.ArgumentParser, also: str = "") -> None:
    """``--source``: a world (default ``demo``); ``also`` names what else the command takes."""
    p.add_argument("--source", default="demo",
                   help="'demo' (the demo world, default), the path of a canonical zarr store "
                        "(an assembled world) or a catalog source with the world driver"
                        + also)


def add_demo_world(p: argparse.ArgumentParser) -> None:
    """``--world``: the world that ``--source demo`` stands for."""
    p.add_argument("--world", default=None, metavar="PATH",
                   help="world store or catalog world source for --source demo (default: "
                        f"the demo world, {locations.help_default('GAPFILL_DEMO')})")
