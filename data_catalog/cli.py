"""``gapfill catalog``: list the catalog's sources and look at one point on one day.

``gapfill catalog list [--json]`` prints every source with its period and whether its
files are present; ``gapfill catalog show NAME --date YYYY-MM-DD --point LAT,LON [--json]``
prints what the source holds there in canonical form (value with units, gap category,
sensor, grid cell centre and distance; for station sources the nearest station's daily
mean). Both accept ``--catalog FILE``. Errors are typed (:mod:`data_catalog.errors`) and
printed as one line by ``gapfill``.
"""

from __future__ import annotations

import argparse
import json
import sys

from data_catalog.errors import OutOfRangeError


def _catalog(args: argparse.Namespace):
    from data_catalog.catalog import load_catalog

    return load_catalog(getattr(args, "catalog", None))


def cmd_list(args: argparse.Namespace) -> int:
    """Print the sources (name, description, start, end, available).

    A source is available when its files are present *and* open (a truncated or damaged
    file makes it unavailable, and the row says which file and why under ``problem``).
    """
    from data_catalog.filecheck import first_problem

    cat = _catalog(args)
    rows = []
    for s in cat:
        row = {"name": s.name, "description": s.description, "start": s.start, "end": s.end,
               "available": bool(s.available())}
        if row["available"]:
            why = first_problem(s.paths())
            if why:
                row["available"], row["problem"] = False, why
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'NAME':<{width}}  {'START':<10}  {'END':<10}  {'AVAILABLE':<9}  DESCRIPTION")
    for r in rows:
        desc = r["description"] if len(r["description"]) <= 70 else \
            r["description"][:69] + "…"
        state = "yes" if r["available"] else ("damaged" if "problem" in r else "no")
        print(f"{r['name']:<{width}}  {r['start'] or '-':<10}  {r['end'] or '-':<10}  "
              f"{state:<9}  {desc}")
    for r in rows:
        if "problem" in r:
            print(f"{r['name']}: {r['problem']}")
    print(f"\n{len(rows)} sources in {cat.path}")
    return 0


def parse_point(text: str) -> tuple[float, float]:
    """``"LAT,LON"`` -> (lat, lon); a typed error for anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise OutOfRangeError(f"--point must be LAT,LON in degrees (e.g. 19.8,-155.4), "
                              f"got {text!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 360):
        raise OutOfRangeError(f"--point {text!r}: latitude must be in -90..90 and "
                              "longitude in -180..360")
    return lat, lon


def parse_date(text: str):
    import pandas as pd

    try:
        return pd.to_datetime(str(text), format="%Y-%m-%d")
    except (ValueError, TypeError):
        raise OutOfRangeError(f"--date must be YYYY-MM-DD, got {text!r}") from None


def _fmt(value, units) -> str:
    if value is None:
        return "no value (gap)"
    return f"{value:g} {units or ''}".rstrip()


def _print_row(row: dict) -> None:
    head = f"{row['source']}" + (f" ({row['role']})" if row.get("role") else "")
    print(f"{head}  {row['date']}  at ({row['lat']:g}, {row['lon']:g})")
    if "error" in row:
        print(f"  error        {row['error']}")
        return
    print(f"  value        {_fmt(row.get('value'), row.get('units'))}"
          f"  [{row.get('variable')}]" + (f", mean of {row['n_obs']} observations"
                                            if row.get("n_obs", 1) > 1 else ""))
    for name, v in (row.get("values") or {}).items():
        if name != row.get("variable"):
            print(f"  {name:<12} {_fmt(v['value'], v['units'])}")
    if "gap_category" in row:
        print(f"  gap          {row['gap_category']}")
    if "sensor" in row or "sensor_bits" in row:
        bits = f" (sensor bits: {', '.join(row['sensor_bits'])})" if row.get("sensor_bits") \
            else ""
        print(f"  sensor       {row.get('sensor', '-')}{bits}")
    if "station" in row:
        print(f"  station      {row['station']} at ({row['station_lat']:g}, "
              f"{row['station_lon']:g}), {row['distance_km']:g} km away, depth "
              f"{row['depth_m'][0]:g}-{row['depth_m'][1]:g} m")
        print(f"  aggregation  {row['aggregation']} ({row['n_obs']} values)")
        if row.get("station_period"):
            print(f"  period       {row['station_period'][0]}..{row['station_period'][1]}")
        other = row.get("nearest_with_data")
        if other:
            print(f"  nearest with data that day: {other['station']}, "
                  f"{other['distance_km']:g} km away: {other['value']:g} {row['units']}")
    else:
        gpi = f" (gpi {row['gpi']})" if "gpi" in row else ""
        print(f"  grid cell    {row['cell_lat']:g}, {row['cell_lon']:g}{gpi}, "
              f"{row['distance_km']:g} km away")


def cmd_show(args: argparse.Namespace) -> int:
    """Print what a source holds at one point on one day."""
    lat, lon = parse_point(args.point)
    date = parse_date(args.date)
    cat = _catalog(args)
    src = cat[args.name]
    rows = src.describe_point(date, lat, lon)
    if args.json:
        print(json.dumps(rows if src.driver == "kit" else rows[0], indent=2, default=str))
        return 0
    for k, row in enumerate(rows):
        if k:
            print()
        _print_row(row)
    sys.stdout.flush()
    return 0


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add ``gapfill catalog list|show`` to the ``gapfill`` subcommands."""
    p = sub.add_parser("catalog", help="list the data catalog and inspect a source at a point",
                       description="The data catalog (data_catalog/catalog.yml or --catalog).")
    csub = p.add_subparsers(dest="catalog_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    pl = csub.add_parser("list", parents=[common], help="list sources, periods, availability")
    pl.add_argument("--json", action="store_true",
                    help="print a JSON list of {name, description, start, end, available}")
    pl.set_defaults(func=cmd_list)

    ps = csub.add_parser("show", parents=[common],
                         help="what a source holds at a point on a day",
                         description="Print the value (with units), gap category, sensor and "
                                     "grid cell of a source at one point and day; for "
                                     "station sources the nearest station's daily mean. "
                                     "Use --point=LAT,LON when the latitude is negative.")
    ps.add_argument("name", help="source name (see `gapfill catalog list`)")
    ps.add_argument("--date", required=True, help="day, YYYY-MM-DD")
    ps.add_argument("--point", required=True, metavar="LAT,LON",
                    help="point in degrees, e.g. 19.8,-155.4")
    ps.add_argument("--json", action="store_true", help="print JSON")
    ps.set_defaults(func=cmd_show)
