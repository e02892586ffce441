"""The network summary: medians per series, the relative change of the median R, JSON rows.

The medians are those of the ``summary`` metrics of :data:`validation.metrics.METRICS`;
JSON rows carry its ``headline`` metrics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation import metrics as mx
from validation import tcol  # noqa: F401  (registers the triple-collocation metrics)
from validation.protocol import FILLED, RAW, Settings, Source

#: Columns of a JSON row before and after the headline metrics.
JSON_ID_KEYS = ("station", "network", "lat", "lon", "series")


def json_keys() -> tuple[str, ...]:
    """Keys of a JSON row: the station and series, the headline metrics, the status."""
    return (*JSON_ID_KEYS, *mx.names(headline=True), "status", "tc_status")


def medians(table: pd.DataFrame) -> pd.DataFrame:
    """Median metrics per series over the stations with status ``OK``.

    Returns a frame indexed by series with ``n_stations`` (OK rows), ``n_total`` and the
    medians of the ``summary`` metrics (:func:`validation.metrics.names`).
    """
    cols = mx.names(summary=True)
    out = []
    for name, g in table.groupby("series", sort=False):
        ok = g[g["status"] == mx.OK]
        rec = {"series": name, "n_stations": len(ok), "n_total": len(g)}
        for c in cols:
            vals = pd.to_numeric(ok[c], errors="coerce").dropna()
            rec[c] = float(vals.median()) if len(vals) else np.nan
        out.append(rec)
    return pd.DataFrame(out, columns=["series", "n_stations", "n_total", *cols]
                        ).set_index("series")


def relative_change(table: pd.DataFrame, before: str, after: str,
                    metric: str = "r") -> float:
    """Relative change of the network median: ``(median_after - median_before) / |median_before|``.

    The medians are over the stations where both series have status ``OK`` (paired), so
    that a series with more stations does not shift the comparison.  NaN when no station
    has both.
    """
    ok = table[table["status"] == mx.OK]
    a = ok[ok["series"] == before].set_index("station")[metric]
    b = ok[ok["series"] == after].set_index("station")[metric]
    both = a.index.intersection(b.index)
    if not len(both):
        return np.nan
    ma, mb = float(a[both].median()), float(b[both].median())
    return (mb - ma) / abs(ma) if ma != 0 else np.nan


def summarize(table: pd.DataFrame, source: Source | None = None,
              settings: Settings | None = None,
              change_pair: tuple[str, str] | None = None) -> dict:
    """Network summary: medians per series and the relative change in median R.

    Returns
    -------
    dict
        ``source``, ``n_stations``, ``series`` (name -> medians), ``relative_change_median_r``
        (``from``, ``to``, ``value``, ``n_stations`` paired; None when the source has no
        such pair), ``statuses`` (counts) and ``settings``.
    """
    pair = change_pair if change_pair is not None else getattr(source, "change_pair",
                                                                (RAW, FILLED))
    med = medians(table) if len(table) else pd.DataFrame()
    series = {name: {k: _json_num(v) for k, v in rec.items()}
              for name, rec in med.to_dict(orient="index").items()}
    change = None
    if pair is not None:
        ok = table[table["status"] == mx.OK] if len(table) else table
        paired = 0
        if len(ok):
            paired = len(set(ok.loc[ok["series"] == pair[0], "station"])
                         & set(ok.loc[ok["series"] == pair[1], "station"]))
        value = relative_change(table, *pair) if len(table) else np.nan
        change = {"from": pair[0], "to": pair[1], "value": _json_num(value),
                  "n_stations": paired}
    return {
        "source": getattr(source, "name", None),
        "n_stations": int(table["station"].nunique()) if len(table) else 0,
        "series": series,
        "relative_change_median_r": change,
        "statuses": {k: int(v) for k, v in table["status"].value_counts().items()}
        if len(table) else {},
        "settings": settings.as_dict() if settings is not None else None,
    }


def _json_num(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(v)
    return v


def json_rows(table: pd.DataFrame) -> list[dict]:
    """The table as JSON-ready rows with exactly :func:`json_keys` (NaN -> None)."""
    keys = json_keys()
    out = []
    for rec in table.reindex(columns=list(keys)).to_dict(orient="records"):
        row = {k: _json_num(rec[k]) for k in keys}
        row["n"] = int(row["n"]) if row["n"] is not None else 0
        out.append(row)
    return out
