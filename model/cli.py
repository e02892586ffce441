"""``gapfill train | transfer | predict | evaluate``: the model's commands.

torch is imported inside the command functions only, so ``gapfill --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys

from data_catalog import locations

log = logging.getLogger(__name__)

DEMO_DEFAULT = f"the demo world, {locations.help_default('GAPFILL_DEMO')}"
WORLD_HELP = ("canonical world store, or a catalog source with the world driver (default: "
              f"{DEMO_DEFAULT})")
CONFIG_WORLD_HELP = ("canonical world store or catalog world source (default: the config's "
                     f"world, else {DEMO_DEFAULT})")


PERIOD_HELP = "FIRST,LAST as years (2013,2020) or days (2015-04-01,2016-03-31)"


def _period(text: str) -> list:
    """A period FIRST,LAST (or one year or day) as a config stores it."""
    from data_catalog.errors import FormatError
    from model.config import period_value

    try:
        return period_value(text, "period")
    except FormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _period_args(p: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        p.add_argument(f"--{name}-period", type=_period, metavar="FIRST,LAST",
                       help=f"{name} period instead of the config's: {PERIOD_HELP}")


def _world(args) -> str | None:
    """``--world``: a store's path or a catalog source with the ``world`` driver."""
    from data_catalog.catalog import world_location

    if args.world is None:
        return None
    return str(world_location(args.world, getattr(args, "catalog", None)))


def _warn_no_ascat(cfg, world: str | None) -> None:
    """Days of the training period without any ASCAT: a logged warning."""
    from data_catalog import schema
    from model.config import period_days
    from model.datasets import open_world
    from model.fit import warn_missing_ascat

    first, last = period_days(cfg.train_years, "train period")
    ds = open_world(world if world is not None else cfg.world)
    warn_missing_ascat(ds.sel({schema.TIME: slice(first, last)}), cfg.region)


def _with_periods(cfg, args):
    """The config with the periods given on the command line."""
    for name in ("train", "val", "test", "reference"):
        value = getattr(args, f"{name}_period", None)
        if value is not None:
            setattr(cfg, f"{name}_years", value)
    return cfg


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the model subcommands to the ``gapfill`` parser."""
    _fit_parser(sub, common, "train", _train, help="train the base (AMSR2) ConvLSTM",
                description="Train the ConvLSTM gap filler; writes a checkpoint with "
                            "metadata and a loss-curve PNG beside it.",
                config_help="TrainConfig YAML")
    p = _fit_parser(sub, common, "transfer", _transfer, help="fine-tune AMSR2 -> AMSR-E",
                    description="Transfer learning: match AMSR-E to the enhanced-AMSR2 "
                                "climatology and fine-tune (ConvLSTM frozen by default).",
                    config_help="TransferConfig YAML")
    p.add_argument("--from", dest="parent", required=True, metavar="CKPT",
                   help="parent (AMSR2) checkpoint")
    _period_args(p, "reference")

    p = sub.add_parser("predict", parents=[common], help="gap-filled field of one day",
                       description="Fill one day over a region with the model of the date's "
                                   "radiometer; prints a summary, optionally writes netCDF.")
    p.add_argument("--region", required=True, metavar="W,S,E,N",
                   help="degrees, e.g. --region -98,34,-94,38; outside the world: refused; "
                        "partly outside the data: clamped to it, with a note")
    # let "-98,34,-94,38" count as a value, not an option (argparse only knows "-98")
    p._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+(,-?[\d.]+){3}$")
    p.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--out", metavar="FILE.nc", help="write the result as netCDF")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--world", metavar="PATH", help=WORLD_HELP)
    p.add_argument("--checkpoint", metavar="CKPT",
                   help="default: the models in the checkpoint folder, by radiometer ("
                        f"{locations.help_default('GAPFILL_CHECKPOINTS')})")
    p.add_argument("--lookback", metavar="DAYS",
                   help="days streamed up to the date (>= 1; default: the checkpoint's)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("evaluate", parents=[common], help="accuracy report vs baselines",
                       description="Score ConvLSTM and baselines on the held-out test years.")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", metavar="DIR", help="write JSON, markdown and figure here")
    p.add_argument("--world", metavar="PATH", help=WORLD_HELP)
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help=f"default: {locations.help_default('GAPFILL_CHECKPOINTS')}")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0, help="seed of the hidden pixels and blocks")
    p.add_argument("--no-ascat-year", type=int, metavar="YEAR",
                   help="AMSR-E year without ASCAT to stratify (default: the transfer "
                        "config's no_ascat_test_year, 2005; 0: none)")
    p.add_argument("--no-strata", action="store_true",
                   help="only the per-sensor scores (no stratified report; ~4x faster)")
    p.add_argument("--test-period", type=_period, metavar="FIRST,LAST",
                   help="period to score instead of each model's first test year: "
                        + PERIOD_HELP)
    p.add_argument("--fit-period", type=_period, metavar="FIRST,LAST",
                   help="period whose observations fit the baselines and the calibration "
                        "(the test period left out) instead of each model's training "
                        "period: " + PERIOD_HELP)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("calibrate-errors", parents=[common],
                       help="fit the error model (filled_sm_uncertainty) of the checkpoints",
                       description="Fit the error model (binned, times the value factor) of "
                                   "the checkpoints on their validation years "
                                   "(model/errors.py) and write errors.json "
                                   "beside them, with their sha256.  Run it after every "
                                   "retrain.")
    p.add_argument("--world", metavar="PATH", help=WORLD_HELP)
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help=f"default: {locations.help_default('GAPFILL_CHECKPOINTS')}")
    p.add_argument("--out", metavar="FILE.json", help="default: errors.json in the folder")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=_calibrate_errors)


def _fit_parser(sub, common: argparse.ArgumentParser, name: str, func, *, help: str,
                description: str, config_help: str) -> argparse.ArgumentParser:
    """The options ``train`` and ``transfer`` share (config, world, out, device, bars)."""
    p = sub.add_parser(name, parents=[common], help=help, description=description)
    p.add_argument("--config", required=True, metavar="FILE", help=config_help)
    p.add_argument("--world", metavar="PATH", help=CONFIG_WORLD_HELP)
    p.add_argument("--out", metavar="CKPT", help="checkpoint to write (default: config 'out')")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    _period_args(p, "train", "val", "test")
    p.set_defaults(func=func)
    return p


def _fit(args, config_cls, fit, summary, *parent) -> int:
    """``train`` and ``transfer``: read the config, run ``fit`` with the command's options,
    print the checkpoint, its sha256 and the command's ``summary(info)``."""
    cfg = _with_periods(config_cls.from_yaml(args.config), args)
    world = _world(args)
    _warn_no_ascat(cfg, world)
    _, info = fit(cfg, *parent, world=world, progress=not args.no_progress,
                  device=args.device, out=args.out)
    print(f"wrote {info['checkpoint']} (sha256 {info['sha256'][:16]}){summary(info)}")
    return 0


def _train(args) -> int:
    from model.config import TrainConfig
    from model.train import train

    return _fit(args, TrainConfig, train, _train_summary)


def _train_summary(info: dict) -> str:
    h = info["history"]
    return (f", loss curve {info['loss_plot']}; best validation hidden-pixel RMSE "
            f"{h['best_val_rmse']:.4f} m3/m3 after {h['steps']} steps, "
            f"{h['wall_s_total']:.0f} s ({h['stop_reason']})")


def _transfer(args) -> int:
    from model.config import TransferConfig
    from model.transfer import transfer

    return _fit(args, TransferConfig, transfer, _transfer_summary, args.parent)


def _transfer_summary(info: dict) -> str:
    s = info["seam"]
    return (f"; seam RMS before {s['before_transfer']:.4f}, after "
            f"{s['after_transfer']:.4f} m3/m3 ({info['seam_plot']})")


def _predict(args) -> int:
    """``gapfill predict``: every argument checked (data_catalog.inputs) before the model.

    A region outside the world, a date outside the record or a day without a radiometer
    in orbit is refused (exit 1, one line); a region partly outside the data is clamped
    to it, and a note on stderr says so (the app does the same, with a notification).
    """
    from data_catalog import inputs, schema
    from data_catalog.errors import EmptySelectionError
    from data_catalog.grid import bounds
    from model.datasets import open_world

    box = inputs.check_region(args.region, "--region")
    day = inputs.check_date(args.date, "--date")
    lookback = None if args.lookback is None else inputs.check_int(args.lookback,
                                                                  "--lookback", 1)
    out_file = None if args.out is None else inputs.check_output_file(args.out, "--out")
    ds = open_world(_world(args))
    times = ds.indexes[schema.TIME]
    day = inputs.check_day_in(day, times[0], times[-1], "--date")
    box, note = inputs.clamp_region(box, bounds(ds[schema.LAT].values, ds[schema.LON].values),
                                    "--region")
    if note:
        print(f"gapfill predict: note: {note}", file=sys.stderr)
    from model.inference import predict, sensor_of_date

    sensor = sensor_of_date(ds, day)
    if sensor == schema.SENSOR_NONE:
        raise EmptySelectionError(f"--date {day:%Y-%m-%d}: no radiometer was in orbit "
                                  "(AMSR-E ended 2011-10-03, AMSR2 began 2012-07-02); "
                                  "nothing to fill")
    model = _checked_model(ds, box, day, sensor, args.checkpoint, args.device, lookback)
    out = predict(ds, box, day, model, device=args.device, lookback=lookback)
    f = out["filled_sm"].values
    gaps = ~((out["gap_mask"].values == 0) & (out["amsr_sm"].values == out["amsr_sm"].values))
    finite = f[f == f]
    print(f"{out.attrs['date']} {out.attrs['sensor_name']} region {out.attrs['region']}: "
          f"{f.shape[0]}x{f.shape[1]} cells, {gaps.mean():.0%} gaps, filled mean "
          f"{finite.mean():.4f} m3/m3 (min {finite.min():.4f}, max {finite.max():.4f})"
          if finite.size else "no land cells")
    print(f"model {out.attrs['model_sensor']} sha256 {out.attrs['checkpoint_sha256'][:16]} on "
          f"{out.attrs['device']} ({out.attrs['precision']}), lookback "
          f"{out.attrs['lookback_days']} d, halo {out.attrs['halo_cells']} cells")
    if out_file is not None:
        out.to_netcdf(out_file)
        print(f"wrote {out_file}")
    return 0


def _checked_model(ds, box, day, sensor: int, checkpoint, device: str, lookback):
    """The model that fills ``day``, refused unless it fits the world there
    (:func:`model.fit.require_fit`); a lookback window without ASCAT is a logged warning."""
    from data_catalog import schema
    from model.fit import require_fit, warn_missing_ascat
    from model.inference import load_model, load_models, model_for_sensor, select_device

    dev = select_device(device)
    model = (load_model(checkpoint, dev) if checkpoint is not None
             else model_for_sensor(load_models(None, dev), sensor))
    ti = int(ds.indexes[schema.TIME].get_loc(day))
    require_fit(model.metadata, ds.isel({schema.TIME: [ti]}), box)
    steps = int(lookback or model.metadata.get("lookback", 32))
    warn_missing_ascat(ds.isel({schema.TIME: slice(max(0, ti - steps + 1), ti + 1)}), box)
    return model


def _evaluate(args) -> int:
    from model.evaluate import evaluate

    res = evaluate(_world(args), args.checkpoint_dir, device=args.device, seed=args.seed,
                   progress=False, out=args.out, strata=not args.no_strata,
                   no_ascat_year=args.no_ascat_year, test_period=args.test_period,
                   fit_period=args.fit_period)
    if args.json:
        print(json.dumps(_nan_null(res), indent=2, allow_nan=False))
    else:
        for sensor, scores in res["sensors"].items():
            print(f"{sensor}: " + ", ".join(f"{m} {s['hidden']['rmse']:.4f}"
                                            for m, s in scores.items())
                  + " (hidden-pixel RMSE, m3/m3)")
        print(f"seam: before {res['seam']['before_transfer']:.4f}, "
              f"after {res['seam']['after_transfer']:.4f}")
        for name, s in res.get("strata", {}).items():
            print(_strata_line(name, s))
        for note in res.get("notes", []):
            print(f"note: {note}")
        if args.out:
            print(f"wrote the report to {args.out}")
    return 0


def _calibrate_errors(args) -> int:
    from model.errors_fit import calibrate_errors

    path, meta = calibrate_errors(args.world, args.checkpoint_dir, out=args.out,
                                  device=args.device)
    for r in meta["runs"]:
        print(f"{r['sensor']} {r['year']}{' without ASCAT' if r['ascat_withheld'] else ''}: "
              f"{r['n']} pixel-days, RMS error observed {r['observed_rms']:.4f}, filled "
              f"{r['filled_rms']:.4f} m3/m3")
    print(f"wrote {path}")
    return 0


def _strata_line(name: str, s: dict) -> str:
    """ConvLSTM / best baseline under natural gaps by days to the nearest observation."""
    from model.strata import GAP_DAY_BINS

    nat = s.get("natural_gaps")
    if not nat:
        return (f"{name}: no natural-gap strata (they are scored against the truth, and this "
                "world has none)")
    parts = []
    for label, _, _ in GAP_DAY_BINS:
        c = nat["gap_days"][label]["calibrated_truth"]
        parts.append(f"{label} d {c['convlstm_over_best']:.2f} ({c['best_baseline']})"
                     if c["best_baseline"] else f"{label} d -")
    return (f"{name} ({s['test_year_role']}): ConvLSTM / best baseline, natural gaps vs the "
            f"calibrated truth: " + ", ".join(parts))


def _nan_null(o):
    """NaN -> null recursively (strict JSON)."""
    if isinstance(o, dict):
        return {k: _nan_null(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_nan_null(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


if __name__ == "__main__":  # pragma: no cover
    from gapfill.cli import main

    sys.exit(main())
