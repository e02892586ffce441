"""``gapfill``: the command line of AMSR Gap-Fill Explorer.

Each package contributes its subcommands through ``register(subparsers, common)`` in its
own ``cli`` module; this module only composes them, so ``data_catalog`` never learns of
``model`` and torch is imported only by the commands that need it.

Every user mistake ends the same way: one line on stderr, ``gapfill COMMAND: error: ...``,
and exit code 1, never a traceback: a bad argument (argparse's usage errors included), a
typed :class:`~data_catalog.errors.GapfillError` from a package, or an ``OSError`` (a
missing folder, a permission) naming its file.  ``-v`` adds the traceback after the line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from data_catalog import locations

# Packages whose ``cli.register`` adds subcommands, in help order.
COMMAND_MODULES = (
    "data_catalog.cli",
    "data_catalog.demo_cli",
    "data_catalog.assemble.cli",
    "model.cli",
    "model.series_cli",
    "validation.cli",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors as one line and exit code 1 (the house rule for every
    user mistake); subcommand parsers inherit it."""

    def error(self, message: str):
        text = " ".join(str(message).split())
        self.exit(1, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def describe(exc: BaseException) -> str:
    """One line for an error: typed errors as they are, OS errors with their file."""
    from data_catalog.errors import GapfillError

    if isinstance(exc, GapfillError):
        text = str(exc)
    elif isinstance(exc, OSError):
        name = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or type(exc).__name__
        text = f"{name}: {reason}" if name else f"{reason} ({exc})"
    else:  # a bug, not a user mistake: still one line, the traceback with -v
        first = (str(exc).strip().splitlines() or [""])[0]
        text = f"unexpected {type(exc).__name__}: {first} (run with -v for the traceback)"
    return " ".join(text.split())


def build_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument("--catalog", metavar="FILE", default=None,
                        help="catalog YAML to use (default: "
                             f"{locations.help_default('GAPFILL_CATALOG')})")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser = OneLineParser(
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
    except Exception as exc:  # noqa: BLE001 - every error ends as one line (see above)
        print(f"gapfill {args.command}: error: {describe(exc)}", file=sys.stderr)
        if getattr(args, "verbose", False):
            traceback.print_exception(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
