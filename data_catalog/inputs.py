"""Checks of every value a user gives: one module for the app and the command line.

A value from a URL, a widget (Panel does not range-check what arrives over the websocket)
or a command-line argument is checked here before any arithmetic: its length first (a
5,000-digit number is refused before ``int`` or ``float`` sees it), then its type, then
that it is finite and inside the world (longitude -180..180, latitude -90..90) or the
record.  Each ``check_*`` returns the clean value or raises :class:`InputError`, whose
message is one line that names the value (shortened) and says what was expected; nothing
else is ever raised (``tests/test_inputs.py`` feeds them arbitrary strings and floats).
The ``parse_*`` and :func:`validate_region` forms return ``None`` or messages instead,
for the app's ``request_*`` methods.

Nothing here imports Panel or torch: :mod:`app.state` and the ``gapfill`` commands share it.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog import grid as gridmod
from data_catalog import schema
from data_catalog.errors import OutOfRangeError

Bbox = tuple[float, float, float, float]

#: Longest text accepted for any value (URL parameter, station id, source name...).
MAX_TEXT = 200
#: Longest number written as text ("-179.875" needs 8; "1.5e-3" style stays far below).
MAX_NUMBER_TEXT = 32
#: Longest date written as text ("2015-06-01T00:00:00.000000+00:00" is 32).
MAX_DATE_TEXT = 40
#: The world: longitude and latitude ranges every coordinate must lie in (degrees).
LON_RANGE = (-180.0, 180.0)
LAT_RANGE = (-90.0, 90.0)

# ISO 8601 days and times; anything else (``"now"``, ``"1e9"``, ``"June 1"``) is refused
# rather than left to pandas' guessing.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}"
                  r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?")


class InputError(OutOfRangeError):
    """A value a user gave is refused; the message (one line) says which and why."""


def shown(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting in a one-line message."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not break the message
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())  # one line, whatever the value holds
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return shown(lines[0], 80)[1:-1] if lines else type(exc).__name__


# ---------------------------------------------------------------- text and numbers
def check_text(value, what: str, max_len: int = MAX_TEXT) -> str:
    """A string of at most ``max_len`` characters (bytes are decoded as UTF-8)."""
    if isinstance(value, bytes):
        if len(value) > 4 * max_len:
            raise InputError(f"{what} is {len(value):,} bytes long; at most {max_len} "
                             "characters are accepted")
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise InputError(f"{what} {shown(value)} is not text")
    if len(value) > max_len:
        raise InputError(f"{what} is {len(value):,} characters long; at most {max_len} "
                         "are accepted")
    return value


def check_number(value, what: str, lo: float | None = None, hi: float | None = None
                 ) -> float:
    """A finite number (a numeric type, or text of at most :data:`MAX_NUMBER_TEXT`
    characters) inside ``lo..hi`` when given."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{what} {shown(value)} is not a number")
    if isinstance(value, str | bytes):
        text = check_text(value, what, MAX_NUMBER_TEXT).strip()
        try:
            x = float(text)
        except ValueError:
            raise InputError(f"{what} {shown(value)} is not a number") from None
    elif isinstance(value, numbers.Real):
        try:
            x = float(value)
        except (OverflowError, ValueError, TypeError):  # a huge int, an odd Real
            raise InputError(f"{what} {shown(value)} is not a finite number") from None
    else:
        raise InputError(f"{what} {shown(value)} is not a number")
    if not math.isfinite(x):
        raise InputError(f"{what} {shown(value)} is not a finite number")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise InputError(f"{what} {x:g} {_range(lo, hi)}")
    return x


def check_int(value, what: str, lo: int | None = None, hi: int | None = None) -> int:
    """A whole number (an integer type, an integral float, or short text) in ``lo..hi``."""
    if isinstance(value, str | bytes):
        text = check_text(value, what, MAX_NUMBER_TEXT).strip()
        try:
            n = int(text)
        except ValueError:
            raise InputError(f"{what} {shown(value)} is not a whole number") from None
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        n = int(value)
    else:
        x = check_number(value, what)
        if not x.is_integer():
            raise InputError(f"{what} {x:g} is not a whole number")
        n = int(x)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise InputError(f"{what} {shown(n)} {_range(lo, hi)}")
    return n


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"is outside {lo:g}..{hi:g}"
    return f"is less than {lo:g}" if lo is not None else f"is more than {hi:g}"


def check_choice(value, choices: Sequence[str], what: str) -> str:
    """One of ``choices`` (text, compared exactly)."""
    text = check_text(value, what)
    if text not in choices:
        names = ", ".join(repr(c) for c in list(choices)[:8])
        more = ", ..." if len(choices) > 8 else ""
        raise InputError(f"{what} {shown(text)} is not one of {names}{more}")
    return text


# ---------------------------------------------------------------- coordinates
def check_lon(value, what: str = "longitude") -> float:
    return check_number(value, what, *LON_RANGE)


def check_lat(value, what: str = "latitude") -> float:
    return check_number(value, what, *LAT_RANGE)


def check_region(value, what: str = "region") -> Bbox:
    """Four finite numbers W, S, E, N inside the world (text ``"W,S,E,N"`` or a sequence).

    The order is not checked here: the app puts swapped edges right
    (:func:`validate_region`), the command line refuses them.
    """
    if isinstance(value, str | bytes):
        text = check_text(value, what, 4 * MAX_NUMBER_TEXT + 3)
        parts: Sequence = text.split(",")
    elif isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        parts = value
    else:
        raise InputError(f"{what} {shown(value)} is not four numbers W,S,E,N")
    if len(parts) != 4:
        raise InputError(f"{what} {shown(value)} is not four numbers W,S,E,N")
    w, s, e, n = (check_lon(parts[0], f"{what} W"), check_lat(parts[1], f"{what} S"),
                  check_lon(parts[2], f"{what} E"), check_lat(parts[3], f"{what} N"))
    return (w, s, e, n)


def parse_region(text) -> Bbox | None:
    """Four comma-separated numbers W,S,E,N inside the world (as in the URL), or ``None``."""
    if not isinstance(text, str):
        return None
    try:
        return check_region(text)
    except InputError:
        return None


# ---------------------------------------------------------------- dates
def check_date(value, what: str = "date") -> pd.Timestamp:
    """A day (00:00, naive UTC) from an ISO 8601 string, a date or a datetime.

    Strings longer than :data:`MAX_DATE_TEXT` are refused before parsing; times are
    dropped, time zones converted to UTC first.
    """
    if isinstance(value, bytes | str):
        text = check_text(value, what, MAX_DATE_TEXT).strip()
        if not text:
            raise InputError(f"{what} is empty; expected YYYY-MM-DD")
        if not _ISO.fullmatch(text):
            raise InputError(f"{what} {shown(value)} is not a day YYYY-MM-DD")
        value = text
    elif not isinstance(value, dt.date | np.datetime64):  # pd.Timestamp is a date too
        raise InputError(f"{what} {shown(value)} is not a day YYYY-MM-DD")
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"{what} {shown(value)} is not a calendar day "
                         f"({_first_line(exc)})") from None
    if t is pd.NaT or pd.isna(t):
        raise InputError(f"{what} {shown(value)} is not a day YYYY-MM-DD")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.normalize()


def parse_date(value) -> pd.Timestamp | None:
    """A day from a date, datetime, numpy datetime or ISO string; ``None`` if it is none."""
    try:
        return check_date(value)
    except InputError:
        return None


def check_day_in(value, start, end, what: str = "date") -> pd.Timestamp:
    """A day (see :func:`check_date`) inside ``start..end`` (the record)."""
    t = check_date(value, what)
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if not lo <= t <= hi:
        raise InputError(f"{what} {t:%Y-%m-%d} is outside the record ({lo:%Y-%m-%d} to "
                         f"{hi:%Y-%m-%d})")
    return t


# ---------------------------------------------------------------- files
def check_output_file(path, what: str = "--out") -> Path:
    """A file that can be written: its folder exists and is writable, it is no folder.

    Checked before a long computation, so that a typo costs nothing.
    """
    text = check_text(os.fspath(path) if isinstance(path, os.PathLike) else path, what, 4096)
    if not text.strip() or "\x00" in text:
        raise InputError(f"{what} {shown(text)} is not a file name")
    p = Path(text).expanduser()
    folder = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InputError(f"{what} {p} is a folder; expected a file name")
    if not folder.is_dir():
        raise InputError(f"{what} {p}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{what} {p}: no permission to write in {folder}")
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(f"{what} {p}: the file exists and is not writable")
    return p


def yaml_problem(exc: BaseException) -> str:
    """A YAML parser error as one line: ``line L, column C: what``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = problem or _first_line(exc)
    return f"{where}{' '.join(str(what).split())}"


# ---------------------------------------------------------------- the grid of a source
@dataclass(frozen=True)
class GridInfo:
    """Geometry and record of the open source: what every user value is checked against.

    Attributes
    ----------
    lat, lon
        Cell centres (ascending), degrees.
    res
        Cell size in degrees (regular grid).
    start, end
        First and last day of the record.
    times
        The days of a sparse product (``None``: every day from ``start`` to ``end``).
    """

    lat: np.ndarray
    lon: np.ndarray
    res: float
    start: pd.Timestamp
    end: pd.Timestamp
    times: pd.DatetimeIndex | None = None

    @classmethod
    def from_dataset(cls, ds) -> GridInfo:
        lat = np.asarray(ds[schema.LAT].values, dtype=float)
        lon = np.asarray(ds[schema.LON].values, dtype=float)
        t = pd.DatetimeIndex(ds[schema.TIME].values).normalize()
        daily = len(t) == (t[-1] - t[0]).days + 1
        return cls(lat, lon, gridmod.resolution(lon), t[0], t[-1], None if daily else t)

    def has_day(self, t: pd.Timestamp) -> bool:
        """Whether the record holds this day (every day between start and end, or one of
        the listed days of a sparse product)."""
        if not (self.start <= t <= self.end):
            return False
        return self.times is None or t in self.times

    @property
    def bounds(self) -> Bbox:
        """Outer cell edges W, S, E, N."""
        h = self.res / 2
        return (float(self.lon[0] - h), float(self.lat[0] - h),
                float(self.lon[-1] + h), float(self.lat[-1] + h))


def validate_region(values, grid: GridInfo, max_cells: int, min_side: int
                    ) -> tuple[Bbox | None, list[str]]:
    """Clamp, snap and cap a region to a grid (never raises).

    Parameters
    ----------
    values
        Anything: ideally four numbers W, S, E, N in degrees (text or a sequence).
    grid
        The source grid the region must lie on.
    max_cells
        Area cap in grid cells; a larger region is shrunk about its centre.
    min_side
        Each side is widened to at least this many cells (within the grid).

    Returns
    -------
    (bbox, messages)
        The valid region (cell edges of the grid) or ``None`` when the input is not four
        finite numbers inside the world or misses the grid entirely, and what was changed
        or why it was refused, for the user.
    """
    try:
        w, s, e, n = check_region(values)
    except InputError as exc:
        return None, [f"{exc}; ignored."]
    msgs: list[str] = []
    if w > e:
        w, e = e, w
    if s > n:
        s, n = n, s
    gw, gs, ge, gn = grid.bounds
    if e <= gw or w >= ge or n <= gs or s >= gn:
        return None, [f"Region ({w:g}, {s:g}, {e:g}, {n:g}) lies outside the data "
                      f"({gw:g}, {gs:g}, {ge:g}, {gn:g}); ignored."]
    r = grid.res
    nlon, nlat = grid.lon.size, grid.lat.size
    # cell-edge indices, clamped to the grid: i0 inclusive, i1 exclusive (the numbers are
    # inside the world, so these divisions stay far from overflow)
    j0 = int(np.clip(math.floor((w - gw) / r + 1e-9), 0, nlon - 1))
    j1 = int(np.clip(math.ceil((e - gw) / r - 1e-9), j0 + 1, nlon))
    i0 = int(np.clip(math.floor((s - gs) / r + 1e-9), 0, nlat - 1))
    i1 = int(np.clip(math.ceil((n - gs) / r - 1e-9), i0 + 1, nlat))
    if (w, s, e, n) != (max(w, gw), max(s, gs), min(e, ge), min(n, gn)):
        msgs.append("Region clamped to the data's extent.")

    def widen(a: int, b: int, size: int) -> tuple[int, int]:
        need = min(min_side, size) - (b - a)
        if need > 0:
            a = max(0, a - need // 2 - need % 2)
            b = min(size, a + min(min_side, size))
            a = max(0, b - min(min_side, size))
        return a, b

    j0, j1 = widen(j0, j1, nlon)
    i0, i1 = widen(i0, i1, nlat)
    cells = (j1 - j0) * (i1 - i0)
    if cells > max_cells:
        f = math.sqrt(max_cells / cells)
        wj, wi = max(min_side, int((j1 - j0) * f)), max(min_side, int((i1 - i0) * f))
        cj, ci = (j0 + j1) // 2, (i0 + i1) // 2
        j0 = int(np.clip(cj - wj // 2, 0, nlon - wj))
        i0 = int(np.clip(ci - wi // 2, 0, nlat - wi))
        j1, i1 = j0 + wj, i0 + wi
        msgs.append(f"Region larger than {max_cells:,} cells; shrunk about its centre to "
                    f"{wj} x {wi} cells.")
    out = (round(gw + j0 * r, 6), round(gs + i0 * r, 6), round(gw + j1 * r, 6),
           round(gs + i1 * r, 6))
    return out, msgs


def clamp_region(box: Bbox, bounds: Bbox, what: str = "region") -> tuple[Bbox, str]:
    """``box`` (W < E, S < N) cut to ``bounds``; a note when it was cut, ``""`` otherwise.

    The command line's rule: a region outside the world or the data is refused, one partly
    outside the data is clamped to it and the note says so.
    """
    w, s, e, n = box
    if not ((w < e and s < n) or (w == e and s == n)):  # a point is one cell
        raise InputError(f"{what} ({w:g}, {s:g}, {e:g}, {n:g}): expected W < E and S < N")
    gw, gs, ge, gn = bounds
    if e <= gw or w >= ge or n <= gs or s >= gn:
        raise InputError(f"{what} ({w:g}, {s:g}, {e:g}, {n:g}) lies outside the data "
                         f"({gw:g}, {gs:g}, {ge:g}, {gn:g})")
    out = (max(w, gw), max(s, gs), min(e, ge), min(n, gn))
    if out == (w, s, e, n):
        return out, ""
    return out, (f"{what} ({w:g}, {s:g}, {e:g}, {n:g}) clamped to the data's extent: "
                 f"({out[0]:g}, {out[1]:g}, {out[2]:g}, {out[3]:g})")


# ---------------------------------------------------------------- command-line types
def argument(check, *args, then=None, **kwargs):
    """An argparse ``type=`` made of a ``check_*``: ``check(text, *args, **kwargs)``, then
    ``then`` (e.g. a formatter); its :class:`InputError` becomes argparse's one-line usage
    error.  The commands check their arguments with the app's validators this way."""
    import argparse

    def parse(text: str):
        try:
            value = check(text, *args, **kwargs)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return then(value) if then is not None else value

    return parse


def iso_day(day: pd.Timestamp) -> str:
    """``YYYY-MM-DD`` of a checked day (what the commands pass on)."""
    return f"{day:%Y-%m-%d}"
