"""Grid facts of a regular lat/lon grid: resolution, cell edges, bounds, region snapping.

Every canonical grid is regular (cell centres ascending, one step in each direction), so
these facts follow from the coordinates alone.  Everything that needs a cell size, an
outer edge or the cells of a region asks here (the ``median(diff(lon))`` idiom lives only
in :func:`resolution`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from data_catalog.errors import EmptySelectionError, OutOfRangeError

#: the project's grid: 0.25 degree cells centred on odd multiples of 0.125 degree
DEFAULT_RES = 0.25

Bbox = tuple[float, float, float, float]


def resolution(coord: Sequence[float] | np.ndarray, default: float = DEFAULT_RES) -> float:
    """Cell size of a regular coordinate (the median step; ``default`` for one cell)."""
    c = np.asarray(coord, dtype=float)
    return float(np.median(np.diff(c))) if c.size > 1 else float(default)


def bounds(lat: np.ndarray, lon: np.ndarray) -> Bbox:
    """Outer cell edges ``(W, S, E, N)`` of a grid given by its cell centres."""
    rl, rn = resolution(lat), resolution(lon)
    return (float(lon[0] - rn / 2), float(lat[0] - rl / 2),
            float(lon[-1] + rn / 2), float(lat[-1] + rl / 2))


def edges(coord: np.ndarray) -> np.ndarray:
    """Cell edges (``n + 1`` values) of ``n`` regular cell centres."""
    c = np.asarray(coord, dtype=float)
    h = resolution(c) / 2
    return np.concatenate([c - h, c[-1:] + h])


def centres(lo: float, hi: float, res: float = DEFAULT_RES) -> np.ndarray:
    """Centres of the cells of the global ``res`` grid whose cells overlap ``lo..hi``.

    The global grid has edges at multiples of ``res`` (0.25 degree: centres at
    ..., -0.125, 0.125, ...), so every region of every source lands on the same cells.
    """
    i0 = math.floor(lo / res + 1e-9)
    i1 = math.ceil(hi / res - 1e-9)
    return (np.arange(i0, max(i1, i0 + 1)) + 0.5) * res


def index_slices(lat: np.ndarray, lon: np.ndarray, region: Sequence[float], *,
                 snap: bool = True) -> tuple[slice, slice]:
    """Index slices ``(lat, lon)`` of the cells whose centres lie in ``(W, S, E, N)``.

    A region smaller than a cell snaps to the nearest cell (``snap=False``: raises
    :class:`EmptySelectionError` instead, for callers that must not widen a request);
    one entirely outside the grid raises :class:`OutOfRangeError`.
    """
    w, s, e, n = (float(v) for v in region)
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise OutOfRangeError(f"region {tuple(region)}: expected four finite numbers")
    if not (w < e and s < n) and not (w == e and s == n):
        raise OutOfRangeError(f"region {tuple(region)}: expected W < E and S < N")
    gw, gs, ge, gn = bounds(lat, lon)
    if e < gw or w > ge or n < gs or s > gn:
        raise OutOfRangeError(f"region {tuple(region)} lies outside the grid "
                              f"({lon[0]:.3f}..{lon[-1]:.3f} E, {lat[0]:.3f}..{lat[-1]:.3f} N)")

    def pick(c, lo, hi):
        idx = np.flatnonzero((c >= lo) & (c <= hi))
        if idx.size == 0 and not snap:
            raise EmptySelectionError(
                f"region W,S,E,N = {w},{s},{e},{n} holds no grid cell centre (grid lat "
                f"{lat[0]:.3f}..{lat[-1]:.3f}, lon {lon[0]:.3f}..{lon[-1]:.3f})")
        if idx.size == 0:
            k = int(np.abs(c - (lo + hi) / 2).argmin())
            return slice(k, k + 1)
        return slice(int(idx[0]), int(idx[-1]) + 1)

    return pick(np.asarray(lat), s, n), pick(np.asarray(lon), w, e)


def nearest_index(coord: np.ndarray, values: np.ndarray | float,
                  inside: bool = True) -> np.ndarray:
    """Index of the nearest cell centre for each value; ``-1`` where the value lies
    outside every cell (more than half a cell from the nearest centre) when ``inside``."""
    c = np.asarray(coord, dtype=float)
    v = np.atleast_1d(np.asarray(values, dtype=float))
    j = np.clip(np.searchsorted(c, v), 1, max(c.size - 1, 1))
    if c.size > 1:
        j = np.where(np.abs(c[j - 1] - v) <= np.abs(c[j] - v), j - 1, j)
    else:
        j = np.zeros_like(j)
    if inside:
        j = np.where(np.abs(c[j] - v) <= resolution(c) / 2 + 1e-6, j, -1)
    return j
