"""``gapfill validate``: compare raw, gap-filled and peer products with in-situ stations.

Examples
--------
``gapfill validate --source demo --json``
``gapfill validate --source hawaii --product cci_gapfilled --out results/hawaii``
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys

from data_catalog import locations, options

log = logging.getLogger(__name__)

SOURCES = ("demo", "hawaii")


def _floats(n: int | None = None):
    def parse(text: str) -> tuple[float, ...]:
        try:
            vals = tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}"
                                             ) from exc
        if not vals or (n is not None and len(vals) != n):
            raise argparse.ArgumentTypeError(
                f"expected {n or 'one or more'} comma-separated numbers, got {text!r}")
        return vals

    return parse


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def _hours(text: str) -> tuple[float, ...]:
    vals = _floats()(text)
    if any(not 0 <= v < 24 for v in vals):
        raise argparse.ArgumentTypeError(f"expected hours in [0, 24), got {text!r}")
    return vals


def _ids(text: str) -> list[str]:
    ids = [s.strip() for s in text.split(",") if s.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("expected station ids separated by commas")
    return ids


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``validate`` to the ``gapfill`` command line."""
    p = sub.add_parser(
        "validate", parents=[common],
        help="validate raw, gap-filled and peer soil moisture against in-situ stations",
        description="Collocate stations with the satellite cells (nearest cell, surface "
                    "sensors, ISMN flag G, mean of hourly values around the overpasses in "
                    "local solar time) and compute R (with p-value and CI), rho, RMSE, "
                    "ubRMSE, bias and the anomaly R per station and series, the network "
                    "medians and the relative change of the median R from raw to filled.")
    options.add_source(p, "; a world other than the demo needs --ismn; or a catalog kit "
                          "with stations ('hawaii')")
    p.add_argument("--ismn", default=None, metavar="SOURCE",
                   help="stations from this catalog source (driver ismn) instead of the "
                        "demo world's, at the cells of the world of --source/--world")
    p.add_argument("--product", default=None,
                   help="compare only this product of a real kit (e.g. cci_passive, "
                        "ascat_h119, cci_gapfilled); default: all of the kit's products")
    p.add_argument("--stations", type=_ids, default=None, metavar="ID,...",
                   help="only these station ids")
    p.add_argument("--json", action="store_true",
                   help="print {\"stations\": [...], \"summary\": {...}} as JSON")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write CSV, markdown, JSON and figures into this folder")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--series-store", default=None, metavar="PATH",
                   help="seamless series store with filled_sm (gapfill build-series); "
                        f"default: {locations.help_default('GAPFILL_SERIES')}, when "
                        "complete, else stream the model at the stations")
    options.add_demo_world(p)
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="model checkpoint for the filled series (default: the models in "
                        f"{locations.help_default('GAPFILL_CHECKPOINTS')}, by radiometer)")
    p.add_argument("--no-model", action="store_true",
                   help="never run the model; without a series store the filled rows say "
                        "NO_MODEL")
    p.add_argument("--device", default="cpu", help="torch device for the model (default cpu)")
    options.add_period(p, None, None, "the source's record; days are UTC")
    p.add_argument("--min-n", type=options.count(1), default=10,
                   help="fewest pairs for metrics (default 10; fewer: INSUFFICIENT_DATA)")
    p.add_argument("--scaling", choices=("none", "mean_std", "cdf_match"), default="none",
                   help="scale volumetric series to the station before RMSE (default none)")
    p.add_argument("--ascat-scaling", choices=("mean_std", "cdf_match"), default="mean_std",
                   help="scaling of ASCAT (percent of saturation) to the station")
    p.add_argument("--window", choices=("overpass", "daily"), default="overpass",
                   help="station value of a day: mean around the overpasses (default) or "
                        "the daily mean")
    p.add_argument("--overpass", type=_hours, default=(1.5, 13.5), metavar="H,...",
                   help="overpass times in local solar time, hours (default 1.5,13.5)")
    p.add_argument("--half-window", type=_nonneg_float, default=1.0, metavar="H",
                   help="half width of the window around each overpass, hours (default 1)")
    p.add_argument("--flags", default="G",
                   help="accepted ISMN quality flags, comma-separated (default G)")
    p.add_argument("--depth", type=_floats(2), default=(0.0, 0.10), metavar="TOP,BOTTOM",
                   help="accepted range of the sensor top in m (default 0,0.1)")
    p.add_argument("--cell-mean", action="store_true",
                   help="average stations that share a satellite cell (one row per cell)")
    p.add_argument("--bootstrap", type=options.count(0), default=0, metavar="N",
                   help="bootstrap resamples for CIs of R and RMSE (default 0: analytical "
                        "CI of R only)")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace):
    """The :class:`validation.compare.Settings` of parsed arguments."""
    from validation import collocation as co
    from validation.protocol import Settings

    window = co.TemporalWindow(mode=args.window, overpass_hours=tuple(args.overpass),
                               half_window_h=args.half_window,
                               flags=tuple(f.strip() for f in args.flags.split(",") if f))
    return Settings(window=window, depth=tuple(args.depth), min_n=args.min_n,
                    scaling=args.scaling, ascat_scaling=args.ascat_scaling,
                    n_boot=max(0, args.bootstrap), start=args.start, end=args.end)


def open_source(args: argparse.Namespace):
    """The validation source named by ``--source``."""
    from data_catalog.catalog import world_location
    from data_catalog.errors import CatalogError

    cat = getattr(args, "catalog", None)
    kit = args.source != "demo" and _is_kit(args.source, cat)
    if not kit:
        if args.product:
            raise CatalogError("--product applies to real kits (e.g. --source hawaii), "
                               "not to a world")
        world = args.world if args.source == "demo" else args.source
        path = None if world is None else world_location(world, cat)
        kw = {"series_store": args.series_store, "checkpoint": args.checkpoint,
              "compute_filled": not args.no_model, "device": args.device, "progress": True}
        if args.ismn is not None:
            from validation.world_source import WorldSource

            return WorldSource(path if path is not None else locations.demo_world(),
                               args.ismn, catalog=cat, **kw)
        if args.source != "demo":
            raise CatalogError(f"--source {args.source}: a world has no stations of its "
                               "own; name a catalog ISMN source with --ismn")
        from validation import sources

        return sources.DemoSource(path, **kw)
    if args.ismn is not None:
        raise CatalogError("--ismn applies to worlds; a kit brings its own stations")
    from validation import kits

    return kits.open_source(args.source, catalog=cat, product=args.product,
                            series_store=args.series_store)


def _is_kit(name: str, catalog) -> bool:
    """Whether ``--source`` names a catalog kit (else a world: a path or world source)."""
    from pathlib import Path

    from data_catalog.catalog import load_catalog

    if Path(name).exists() or len(Path(name).parts) > 1:
        return False
    cat = load_catalog(catalog)
    return name not in cat or cat[name].driver != "world"


def run(args: argparse.Namespace) -> int:
    from validation import compare as cmp
    from validation import summary as sm

    settings = settings_from_args(args)
    source = open_source(args)
    table, frames = cmp.network_frames(source, settings, args.stations,
                                       cell_mean=args.cell_mean)
    summary = sm.summarize(table, source, settings)
    if getattr(source, "filled_origin", ""):
        summary["filled_origin"] = source.filled_origin
    if args.out:
        from validation import report

        files = report.write_outputs(args.out, table, summary, frames, settings,
                                     figures=not args.no_figures)
        summary["files"] = [str(f) for f in files]
    if args.json:
        doc = {"stations": sm.json_rows(table), "summary": _clean(summary)}
        json.dump(doc, sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        from validation import report

        sys.stdout.write(report.markdown_table(table, summary))
    return 0


def _clean(obj):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
