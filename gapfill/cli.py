"""``gapfill``: the command line of AMSR Gap-Fill Explorer.

Each package contributes its subcommands through ``register(subparsers, common)`` in its
own ``cli`` module; this module only composes them, so ``data_catalog`` never learns of
``model`` and torch is imported only by the commands that need it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Packages whose ``cli.register`` adds subcommands, in help order.
COMMAND_MODULES = (
    "data_catalog.cli",
    "data_catalog.demo_cli",
    "data_catalog.assemble.cli",
    "model.cli",
    "model.series_cli",
    "validation.cli",
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", metavar="FILE", default=None,
                        help="catalog YAML to use instead of the built-in one "
                             "(or set GAPFILL_CATALOG)")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser = argparse.ArgumentParser(
        prog="gapfill",
        description="Gap-filled AMSR-E/AMSR2 soil moisture (Sivaprasad et al. 2025): data "
                    "catalog, ConvLSTM model, validation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # typed errors from the packages carry their own message
        from data_catalog.errors import GapfillError

        if isinstance(exc, GapfillError):
            print(f"gapfill {args.command}: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
