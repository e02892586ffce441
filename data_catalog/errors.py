"""Typed errors raised at the data boundary; each names the file and what was expected."""

from __future__ import annotations

from pathlib import Path


class GapfillError(Exception):
    """Base of every error the project raises on purpose (the CLI prints these plainly)."""


class DataError(GapfillError):
    """Something wrong with an input file or selection."""

    def __init__(self, message: str, path: str | Path | None = None,
                 variable: str | None = None):
        self.path = None if path is None else Path(path)
        self.variable = variable
        where = []
        if path is not None:
            where.append(str(path))
        if variable is not None:
            where.append(f"variable {variable!r}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class MissingFileError(DataError, FileNotFoundError):
    """The file or folder does not exist."""


class FormatError(DataError):
    """The file exists but is not the expected format (truncated, not netCDF, wrong layout)."""


class MissingVariableError(DataError, KeyError):
    """A variable the reader needs is not in the file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class UnitsError(DataError):
    """Units are missing or not among the known spellings."""


class EmptySelectionError(DataError):
    """A region, date or station selection matched nothing."""


class OutOfRangeError(DataError, ValueError):
    """A region or date lies outside what the source holds."""


class CatalogError(GapfillError):
    """The catalog file is malformed or names an unknown source or driver."""


class CheckpointFitError(GapfillError):
    """A model checkpoint does not fit the data it was asked to run on (another grid, a
    region outside a transferred model's matching maps, another radiometer's days)."""
