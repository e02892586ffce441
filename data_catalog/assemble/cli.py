"""``gapfill assemble``: turn catalog sources (a user's own downloads) into a world store."""

from __future__ import annotations

import argparse
import json

from data_catalog.errors import OutOfRangeError


def parse_region(text: str) -> tuple[float, float, float, float]:
    """``"W,S,E,N"`` -> four floats; a typed error (one line, exit 1) for anything else."""
    try:
        w, s, e, n = (float(v) for v in str(text).split(","))
    except ValueError:
        raise OutOfRangeError(f"--region must be W,S,E,N in degrees (write --region=W,S,E,N "
                              f"when W is negative), got {text!r}") from None
    return w, s, e, n


def _run(args: argparse.Namespace) -> int:
    from data_catalog.assemble.runner import assemble

    summary = assemble(
        [n.strip() for n in args.amsr.split(",") if n.strip()], args.ascat.strip(),
        parse_region(args.region), args.start, args.end, args.out, catalog=args.catalog,
        scheduler=args.scheduler, workers=args.workers, force=args.force,
        progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(summary, indent=2))
    elif summary["reused"]:
        print(f"{summary['out']} is already this world (same sources, region, period and "
              "files); nothing to do")
    else:
        print(f"world written to {summary['out']}: {summary['days']} days x "
              f"{summary['lat']} x {summary['lon']} cells from {summary['files']} files in "
              f"{summary['seconds']:.1f} s ({summary['blocks_reused']} of {summary['blocks']} "
              f"blocks kept from an earlier run); observed {summary['observed_fraction']:.1%}"
              f" of land pixel-days, ASCAT {summary['ascat_fraction']:.1%}")
    return 0


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add ``assemble`` to the ``gapfill`` subcommands."""
    p = sub.add_parser(
        "assemble", parents=[common],
        help="assemble a world from your own LPRM / CCI / C3S / H SAF downloads",
        description="Read AMSR (LPRM daily files, CCI/C3S PASSIVE images) and ASCAT (H SAF "
                    "ragged cells, CCI/C3S ACTIVE images) catalog sources and write a "
                    "canonical world store (the demo world's form, without truth) on the "
                    "0.25 degree cells of a region, one block of days at a time. Killed and "
                    "run again with the same arguments, it keeps the finished blocks.")
    p.add_argument("--amsr", required=True, metavar="SOURCE[,SOURCE...]",
                   help="catalog source(s) of AMSR-E/AMSR2 soil moisture, one file per day "
                        "among them (e.g. LPRM AMSR-E for 2002-2011 and AMSR2 from 2012)")
    p.add_argument("--ascat", required=True, metavar="SOURCE",
                   help="catalog source of ASCAT soil moisture (H SAF cells or ACTIVE images)")
    p.add_argument("--region", required=True, metavar="W,S,E,N",
                   help="region in degrees; write --region=W,S,E,N when W is negative")
    p.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first day")
    p.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="last day")
    p.add_argument("--out", default=None, metavar="WORLD.zarr",
                   help="store to write (default: $GAPFILL_WORLDS/<first AMSR source>_"
                        "<start>_<end>.zarr)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask.distributed scheduler (its workers must "
                        "see the input files and the output folder)")
    p.add_argument("--workers", type=int, default=1,
                   help="without --scheduler: worker processes of a local Dask cluster "
                        "(default 1: blocks run one after another in this process)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing store that is not this same world")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
