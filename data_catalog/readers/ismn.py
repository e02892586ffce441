"""ISMN station downloads through the ``ismn`` package (TU Wien), in the stations form.

Reads a download folder or zip in any of the layouts the ``ismn`` package understands
(``header_values``, ``CEOP separated``; zipped or unpacked). The package writes a metadata
cache (``python_metadata``) next to the data unless told otherwise: this reader always
gives it ``meta_path`` in the user cache (or a folder you pass), never the data folder,
so read-only and shared data folders stay untouched.

Returns ``(table, series)``: ``table`` with :data:`data_catalog.schema.STATION_COLUMNS`
(one row per station, the chosen sensor), ``series`` ``id -> DataFrame`` indexed by UTC
``time`` with ``sm`` (m3 m-3) and ``flag`` (the ISMN quality flag string). Only flag
``G`` (good) is kept by default; :func:`daily_mean` aggregates to daily UTC means.

Files the package cannot parse (for example the old all-depths CEOP format in a flat
folder, or a stray text file) are skipped by the package with a logged warning; a folder
in which nothing at all can be read raises :class:`~data_catalog.errors.FormatError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog import locations, schema
from data_catalog.errors import EmptySelectionError, FormatError, MissingFileError

log = logging.getLogger(__name__)

DEFAULT_DEPTH = (0.0, 0.10)


def default_meta_root() -> Path:
    """Where ISMN metadata caches go: ``ismn_meta`` in the cache folder
    (:func:`data_catalog.locations.cache_dir`)."""
    return locations.cache_dir() / "ismn_meta"


def _meta_path_for(data: Path, meta_path: str | Path | None) -> Path:
    if meta_path is None:
        # the cache key changes whenever a data file is added, removed or rewritten, so a
        # stale package cache is never reused
        files = sorted(data.rglob("*")) if data.is_dir() else [data]
        sig = hashlib.sha1(str(data.resolve()).encode())
        for f in files:
            if f.is_file() and "python_metadata" not in f.parts:
                st = f.stat()
                sig.update(f"{f.relative_to(data) if data.is_dir() else f.name}|"
                           f"{st.st_size}|{st.st_mtime_ns}".encode())
        meta = default_meta_root() / f"{data.name}-{sig.hexdigest()[:16]}"
    else:
        meta = Path(meta_path)
    # a folder: nothing inside it; a zip: not the package's default beside it
    data_dir = data.resolve() if data.is_dir() else data.resolve().parent / "python_metadata"
    if meta.resolve().is_relative_to(data_dir):
        raise FormatError(f"meta_path {meta} lies inside the data folder; the ISMN metadata "
                          "cache must live elsewhere", data)
    meta.mkdir(parents=True, exist_ok=True)
    return meta


def _quiet():
    """Silence the ismn package's own deprecation chatter (pandas inplace, renamed API)."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", UserWarning)
    try:
        from pandas.errors import Pandas4Warning  # type: ignore[attr-defined]

        warnings.simplefilter("ignore", Pandas4Warning)
    except ImportError:  # pragma: no cover - older pandas
        pass
    return ctx


def open_interface(path: str | Path, meta_path: str | Path | None = None):
    """An ``ismn.interface.ISMN_Interface`` on ``path`` with the cache outside the data."""
    data = Path(path)
    if not data.exists():
        raise MissingFileError("ISMN download folder or zip not found", data)
    meta = _meta_path_for(data, meta_path)
    from ismn.interface import ISMN_Interface

    ctx = _quiet()
    root_logger = logging.getLogger()
    level = root_logger.level
    # the package logs every file it collects (and full tracebacks for the ones it skips);
    # we report skipped files ourselves, once, as warnings
    noisy = [logging.getLogger(n) for n in ("ismn", "ismn_meta_collector")]
    noisy_propagate = [lg.propagate for lg in noisy]
    for lg in noisy:
        lg.propagate = False  # its own log file in meta_path still gets everything
    ismn_level = noisy[0].level
    noisy[0].setLevel(logging.WARNING)  # 'ismn' prints progress to stderr at INFO
    chatter = io.StringIO()  # the package prints progress; keep stdout clean for the CLI
    try:
        with contextlib.redirect_stdout(chatter):
            return ISMN_Interface(str(data), meta_path=str(meta), parallel=False)
    except (TypeError, ValueError, KeyError, IndexError, OSError) as exc:
        raise FormatError(f"no readable ISMN station file (header_values or CEOP separated) "
                          f"found: {type(exc).__name__}: {exc}", data) from exc
    finally:
        root_logger.setLevel(level)
        for lg, prop in zip(noisy, noisy_propagate, strict=True):
            lg.propagate = prop
        noisy[0].setLevel(ismn_level)
        if chatter.getvalue().strip():
            log.debug("ismn: %s", chatter.getvalue().strip())
        ctx.__exit__(None, None, None)


def _skipped_files(meta: Path) -> list[str]:
    out = []
    for log_file in meta.glob("*.log"):
        text = log_file.read_text(errors="replace")
        if "Erroneous Files" in text:
            block = text.split("Erroneous Files", 1)[1].splitlines()[1:]
            out += [ln.strip() for ln in block
                    if ln.strip() and not ln.startswith("---") and "*missing*" not in ln]
    return out


def read_ismn(path: str | Path, *, variable: str = "soil_moisture",
              depth: tuple[float, float] = DEFAULT_DEPTH,
              flags: Sequence[str] | None = ("G",),
              networks: Iterable[str] | None = None,
              meta_path: str | Path | None = None,
              start=None, end=None) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Read an ISMN download into the stations form.

    Parameters
    ----------
    path
        The download folder (network/station tree or flat) or the zip file.
    variable
        ISMN variable name.
    depth
        ``(top, bottom)`` in m: a sensor qualifies when the top of its measuring range lies
        within this interval; per station the shallowest qualifying sensor is used (ties:
        the one with most observations).
    flags
        ISMN quality flags to keep (``("G",)``: good only); ``None`` keeps everything.
    networks
        Optional network names to read.
    meta_path
        Folder for the ``ismn`` metadata cache (default: the user cache, never the data).
    start, end
        Optional time window (inclusive days, UTC).

    Returns
    -------
    (pandas.DataFrame, dict[str, pandas.DataFrame])
        The station table and ``id -> series`` (ids are ``NETWORK.STATION``).
    """
    data = Path(path)
    if not data.exists():
        raise MissingFileError("ISMN download folder or zip not found", data)
    meta = _meta_path_for(data, meta_path)
    iface = open_interface(data, meta)
    skipped = _skipped_files(meta)
    for f in skipped:
        log.warning("ISMN: skipped a file the ismn package could not parse: %s", f)
    wanted = None if networks is None else set(networks)
    d0, d1 = float(depth[0]), float(depth[1])
    t0 = pd.Timestamp(start, tz="UTC") if start is not None else None
    t1 = (pd.Timestamp(end, tz="UTC") + pd.Timedelta("1D") - pd.Timedelta("1ns")
          if end is not None else None)
    rows, series = [], {}
    ctx = _quiet()
    try:
        for net_name, net in iface.networks.items():
            if wanted is not None and net_name not in wanted:
                continue
            for st_name, st in net.stations.items():
                cands = [s for s in st.sensors.values()
                         if s.variable == variable and d0 <= float(s.depth.start) <= d1]
                if not cands:
                    continue
                frames = {}
                for s in cands:
                    raw = s.read_data()
                    frames[s.name] = raw
                best = min(cands, key=lambda s: (float(s.depth.start), -len(frames[s.name]),
                                                 s.name))
                raw = frames[best.name]
                df = _canonical_series(raw, variable, flags)
                if t0 is not None:
                    df = df.loc[df.index >= t0]
                if t1 is not None:
                    df = df.loc[df.index <= t1]
                sid = f"{net_name}.{st_name}"
                series[sid] = df
                rows.append({"id": sid, "network": net_name, "name": st_name,
                             "lat": float(st.lat), "lon": float(st.lon),
                             "depth_from": float(best.depth.start),
                             "depth_to": float(best.depth.end),
                             "sensor": str(best.instrument)})
    finally:
        ctx.__exit__(None, None, None)
        if hasattr(iface, "close_files"):
            iface.close_files()
    if not rows:
        raise EmptySelectionError(f"no station measures {variable!r} with a sensor top within "
                                  f"{d0}-{d1} m" + (f" in networks {sorted(wanted)}"
                                                    if wanted else ""), data, variable)
    table = pd.DataFrame(rows, columns=list(schema.STATION_COLUMNS))
    table = table.sort_values("id", ignore_index=True)
    return table, {k: series[k] for k in table["id"]}


def _canonical_series(raw: pd.DataFrame, variable: str, flags: Sequence[str] | None
                      ) -> pd.DataFrame:
    flag_col = f"{variable}_flag"
    if variable not in raw.columns:
        raise FormatError(f"ISMN data has no column {variable!r} (has {list(raw.columns)})")
    sm = pd.to_numeric(raw[variable], errors="coerce").to_numpy(np.float64)
    flag = (raw[flag_col].astype(str).to_numpy() if flag_col in raw.columns
            else np.full(len(raw), "", dtype=object))
    idx = pd.DatetimeIndex(raw.index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    df = pd.DataFrame({"sm": sm, "flag": flag}, index=idx.rename("time"))
    if flags is not None:
        df = df.loc[df["flag"].isin(list(flags))]
    df = df.loc[np.isfinite(df["sm"].to_numpy())]
    return df.sort_index()


def daily_mean(series: pd.DataFrame, *, min_count: int = 1) -> pd.DataFrame:
    """Daily (UTC) mean of a native/hourly station series.

    Parameters
    ----------
    series
        Frame indexed by UTC time with column ``sm``.
    min_count
        Days with fewer valid values than this get ``NaN``.

    Returns
    -------
    pandas.DataFrame
        Indexed by UTC midnight ``time``, columns ``sm`` (mean) and ``count`` (values used).
    """
    if "sm" not in series.columns:
        raise FormatError(f"station series has no 'sm' column (has {list(series.columns)})")
    idx = pd.DatetimeIndex(series.index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    sm = pd.Series(series["sm"].to_numpy(np.float64), index=idx)
    grouped = sm.resample("1D")
    out = pd.DataFrame({"sm": grouped.mean(), "count": grouped.count().astype(np.int64)})
    out.loc[out["count"] < min_count, "sm"] = np.nan
    out.index.name = "time"
    return out
