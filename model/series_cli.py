"""``gapfill build-series`` and ``gapfill export-netcdf``: the seamless AMSR-E/2 series."""

from __future__ import annotations

import argparse
import logging

from data_catalog import inputs, locations, options, schema

logger = logging.getLogger(__name__)

MODEL_CHOICES = {"shipped": "model.inference:load_models",
                 "persistence": "model.series:persistence_models"}


def _models(text: str) -> str:
    if text in MODEL_CHOICES:
        return MODEL_CHOICES[text]
    if ":" in text:
        return text
    raise argparse.ArgumentTypeError(
        f"expected one of {sorted(MODEL_CHOICES)} or a factory 'module:function', got {text!r}")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``build-series`` and ``export-netcdf`` to the ``gapfill`` command line."""
    p = sub.add_parser(
        "build-series", parents=[common],
        help="build the seamless gap-filled AMSR-E/AMSR2 series store (Dask, resumable)",
        description="Gap-fill every day of a period tile by tile on Dask and write a zarr "
                    "store with filled_sm, amsr_sm and source_flag. Killed and run again "
                    "with the same arguments, it finishes only the missing tiles.")
    options.add_source(p)
    options.add_demo_world(p)
    options.add_period(p, "2003-01-01", "2023-12-31", "")
    p.add_argument("--region", type=options.region, default=None, metavar="W,S,E,N",
                   help=options.REGION_HELP + " (default: the whole world)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="zarr store to write (default: "
                        f"{locations.help_default('GAPFILL_SERIES')})")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of an existing dask.distributed scheduler (workers must see "
                        "--out and the input); 'synchronous' runs without Dask")
    p.add_argument("--workers", type=options.count(1), default=2,
                   help="worker processes of the local cluster (default 2; one thread each)")
    p.add_argument("--model", type=_models, default=MODEL_CHOICES["shipped"],
                   help="'shipped' (the trained checkpoints, default), 'persistence' "
                        "(a transparent baseline) or a factory 'module:function'")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="checkpoints of the shipped models (default: "
                        f"{locations.help_default('GAPFILL_CHECKPOINTS')})")
    p.add_argument("--gap-model", choices=("amsr_e", "amsr2"), default="amsr2",
                   help="model that fills the 2011-10-04..2012-07-01 gap (default amsr2, "
                        "the base model)")
    p.add_argument("--tile", type=options.count(1), default=32,
                   help="tile edge in cells (default 32)")
    p.add_argument("--halo", type=options.count(0), default=8,
                   help="halo of each tile in cells (default 8)")
    p.add_argument("--time-chunk", type=options.count(1), default=365,
                   help="days per time block and store chunk (default 365)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a store built with other settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_build)

    e = sub.add_parser("export-netcdf", parents=[common],
                       help="write a CF-compliant netCDF of a region and period of a series",
                       description="Write a CF-1.10 netCDF-4 file from a series store.")
    e.add_argument("--store", default=None, metavar="PATH",
                   help=f"series store (default: {locations.help_default('GAPFILL_SERIES')})")
    e.add_argument("--region", type=options.region, default=None, metavar="W,S,E,N",
                   help=options.REGION_HELP + " (default: the store's)")
    options.add_period(e, None, None, "the store's")
    e.add_argument("--out", required=True, metavar="FILE.nc")
    e.set_defaults(func=_export)


def _build(args: argparse.Namespace) -> int:
    from model import series

    if not args.verbose and args.scheduler != "synchronous":
        # the scheduler's, nannies' and scratch folders' start/stop chatter
        import distributed  # noqa: F401  (creates its loggers)

        for name in list(logging.root.manager.loggerDict):
            if name == "distributed" or name.startswith("distributed."):
                logging.getLogger(name).setLevel(logging.WARNING)
    from data_catalog.catalog import world_location

    gap = schema.SENSOR_AMSRE if args.gap_model == "amsr_e" else schema.SENSOR_AMSR2
    cat = getattr(args, "catalog", None)
    source = args.source if args.source == "demo" else str(world_location(args.source, cat))
    world = None if args.world is None else str(world_location(args.world, cat))
    out = series.build_series(
        args.out or locations.series_store(), source, world=world,
        start=args.start, end=args.end,
        region=args.region, scheduler=args.scheduler, workers=args.workers,
        models=args.model, checkpoint_dir=args.checkpoint_dir, gap_model=gap,
        tile=args.tile, halo=args.halo, time_chunk=args.time_chunk,
        overwrite=args.overwrite, progress=not args.no_progress)
    print(f"series store: {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from model import series

    inputs.check_output_file(args.out, "--out")  # before reading the store
    out = series.export_netcdf(args.store or locations.series_store(), args.out,
                               region=args.region, start=args.start, end=args.end)
    print(f"netCDF: {out}")
    return 0
