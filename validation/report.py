"""Validation outputs: CSV, a markdown table, a JSON summary and figures.

Figures are drawn with matplotlib's Agg backend (no display): per station a scatter plot
of every compared series against the station with the 1:1 line, and a time series plot;
for the network a box plot of R per series.  matplotlib is imported only when drawing.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from validation import metrics as mx
from validation import protocol as pr
from validation import summary as sm

log = logging.getLogger(__name__)

SERIES_COLORS = {"raw": "#8c564b", "filled": "#17becf", "filled_gaps": "#1f77b4",
                 "ascat": "#ff7f0e", "truth": "#2ca02c", "cci_passive": "#8c564b",
                 "ascat_h119": "#ff7f0e", "cci_gapfilled": "#9467bd",
                 "cci_gapfilled_gaps": "#e377c2"}


def safe_name(text: str) -> str:
    """A file-name-safe version of a station id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "station"


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            return ""
        if abs(v) < 0.5 * 10.0**-digits:  # no "-0.000"
            v = 0.0
        return f"{v:.{digits}f}"
    return str(v).replace("|", "\\|")


def md_columns() -> tuple[str, ...]:
    """Columns of the markdown table: station, series, the ``report`` metrics, status."""
    return ("station", "network", "series", *mx.names(report=True), "status")


def markdown_table(table: pd.DataFrame, summary: Mapping | None = None,
                   columns: tuple[str, ...] | None = None) -> str:
    """The network table as GitHub markdown, with the medians and the relative change."""
    cols = [c for c in (columns or md_columns()) if c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for rec in table[cols].to_dict(orient="records"):
        lines.append("| " + " | ".join(_fmt(rec[c]) for c in cols) + " |")
    out = ["# Station validation", ""]
    if summary:
        out.append(f"Source: `{summary.get('source')}`, {summary.get('n_stations')} stations.")
        out.append("")
    out += lines
    if len(table):
        med = sm.medians(table)
        metrics = [mx.METRICS[c] for c in mx.names(summary=True)]
        out += ["", "## Network medians (stations with status OK)", "",
                "| series | stations | " + " | ".join(m.name for m in metrics) + " |",
                "|---|---|" + "---|" * len(metrics)]
        for name, rec in med.iterrows():
            out.append(f"| {name} | {int(rec['n_stations'])}/{int(rec['n_total'])} | "
                       + " | ".join(_fmt(rec[m.name], m.digits) for m in metrics) + " |")
    if "note" in table.columns and len(table):
        bad = table[(table["status"] != mx.OK) & (table["note"].fillna("") != "")]
        if len(bad):
            out += ["", "## Notes", ""]
            out += [f"* `{r.station}` {r.series}: {r.status} ({r.note})"
                    for r in bad.itertuples(index=False)]
    if summary and summary.get("relative_change_median_r"):
        ch = summary["relative_change_median_r"]
        val = ch.get("value")
        txt = "n/a" if val is None else f"{100 * val:+.1f} %"
        out += ["", f"Relative change of the median R from `{ch['from']}` to `{ch['to']}` "
                    f"(paired over {ch.get('n_stations', 0)} stations): **{txt}**"]
    return "\n".join(out) + "\n"


def write_outputs(out_dir: str | Path, table: pd.DataFrame, summary: Mapping,
                  frames: Mapping[str, pd.DataFrame] | None = None,
                  settings: pr.Settings | None = None, *, figures: bool = True,
                  prefix: str = "validation") -> list[Path]:
    """Write ``<prefix>.csv``, ``<prefix>.md``, ``<prefix>.json`` and figures to ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Created if missing.
    table : pandas.DataFrame
        :func:`validation.compare.network_table` rows.
    summary : mapping
        :func:`validation.summary.summarize` output.
    frames : mapping, optional
        Station id -> :func:`validation.compare.station_timeseries` frame, for figures.
    settings : Settings, optional
        For the scaling of saturation series in the scatter plots.
    figures : bool
        Draw the figures (PNG).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv = out / f"{prefix}.csv"
    table.to_csv(csv, index=False, float_format="%.6g")
    written.append(csv)
    md = out / f"{prefix}.md"
    md.write_text(markdown_table(table, summary))
    written.append(md)
    js = out / f"{prefix}.json"
    js.write_text(json.dumps({"stations": sm.json_rows(table), "summary": summary},
                             indent=1, default=str))
    written.append(js)
    if figures:
        settings = settings or pr.Settings()
        if len(table):
            written.append(plot_network(table, out / f"{prefix}_r_by_series.png"))
        for sid, frame in (frames or {}).items():
            written.append(plot_scatter(frame, out / f"scatter_{safe_name(sid)}.png", settings))
            written.append(plot_timeseries(frame, out / f"timeseries_{safe_name(sid)}.png",
                                           settings))
    log.info("wrote %d files to %s", len(written), out)
    return written


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _compared(frame: pd.DataFrame, settings: pr.Settings):
    """(name, x = station, y = series (scaled where needed)) for every series with data."""
    for name, meta in frame.attrs.get("series", {}).items():
        if meta.get("status") is not None or name not in frame:
            continue
        ref = frame[f"{pr.INSITU}_{name}"] if meta.get("exact_times") else frame[pr.INSITU]
        y = frame[name]
        if meta.get("saturation"):
            y = mx.scale(y, ref, settings.ascat_scaling)
        elif settings.scaling != "none":
            y = mx.scale(y, ref, settings.scaling)
        ok = ref.notna() & y.notna()
        if ok.any():
            yield name, ref, y, meta


def plot_scatter(frame: pd.DataFrame, path: str | Path,
                 settings: pr.Settings | None = None) -> Path:
    """Scatter of each series against the station (one panel per series) with the 1:1 line."""
    plt = _plt()
    settings = settings or pr.Settings()
    items = list(_compared(frame, settings))
    n = max(1, len(items))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.7), squeeze=False,
                             layout="constrained")
    st = frame.attrs.get("station", {})
    lo, hi = 0.0, 0.6
    vals = [v for _, x, y, _ in items for v in (x.min(), x.max(), y.min(), y.max())]
    vals = [v for v in vals if np.isfinite(v)]
    if vals:
        pad = 0.02
        lo, hi = max(0.0, min(vals) - pad), max(vals) + pad
    for ax, (name, x, y, meta) in zip(axes[0], items, strict=False):
        ok = x.notna() & y.notna()
        r = mx.pearson_r(y[ok], x[ok])
        ax.scatter(x[ok], y[ok], s=4, alpha=0.4, color=SERIES_COLORS.get(name, "#444444"),
                   edgecolors="none")
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, label="1:1")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        label = name + (" (scaled)" if meta.get("saturation") else "")
        ax.set_title(f"{label}\nN={int(ok.sum())}  R={r:.2f}", fontsize=9)
        ax.set_xlabel("station (m³ m⁻³)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("satellite / model (m³ m⁻³)", fontsize=8)
    if not items:
        axes[0][0].text(0.5, 0.5, "no pairs", ha="center", va="center",
                        transform=axes[0][0].transAxes)
    fig.suptitle(f"{st.get('id', '')} ({st.get('network', '')})", fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_timeseries(frame: pd.DataFrame, path: str | Path,
                    settings: pr.Settings | None = None) -> Path:
    """Station and compared series over time (saturation series scaled to the station)."""
    plt = _plt()
    settings = settings or pr.Settings()
    fig, ax = plt.subplots(figsize=(10, 3.4))
    st = frame.attrs.get("station", {})
    ax.plot(frame.index, frame[pr.INSITU], color="k", lw=1.0, label="station")
    items = list(_compared(frame, settings))
    # continuous series as lines first, observation-day and gap-day subsets as dots on top
    # (sparse series, e.g. ASCAT every other day, would be broken lines: dots too)
    items.sort(key=lambda it: _is_subset(it[0], it[3]) or it[2].notna().mean() < 0.6)
    for name, _x, y, meta in items:
        color = SERIES_COLORS.get(name)
        label = name + (" (scaled)" if meta.get("saturation") else "")
        if _is_subset(name, meta) or y.notna().mean() < 0.6:
            ax.plot(y.index, y, ".", ms=2.5, label=label, color=color)
        else:
            ax.plot(y.index, y, lw=0.8, alpha=0.85, label=label, color=color)
    ax.set_ylabel("soil moisture (m³ m⁻³)")
    ax.set_title(f"{st.get('id', '')} ({st.get('network', '')}), UTC days", fontsize=10)
    ax.legend(fontsize=7, ncol=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def _is_subset(name: str, meta: Mapping) -> bool:
    """Series drawn as dots: raw observations and gap-day subsets."""
    return bool(meta.get("parent")) or name in ("raw", "cci_passive", "c3s_passive")


def plot_network(table: pd.DataFrame, path: str | Path) -> Path:
    """Box plot of the station R per series (status OK), with the medians written."""
    plt = _plt()
    ok = table[table["status"] == mx.OK]
    names = [n for n in dict.fromkeys(table["series"]) if (ok["series"] == n).any()]
    fig, ax = plt.subplots(figsize=(1.4 * max(2, len(names)) + 1, 3.6))
    data = [pd.to_numeric(ok.loc[ok["series"] == n, "r"], errors="coerce").dropna().to_numpy()
            for n in names]
    if names:
        ax.boxplot(data, tick_labels=names)
        for k, d in enumerate(data, start=1):
            if d.size:
                ax.text(k, np.median(d), f" {np.median(d):.2f}", fontsize=7, va="bottom")
    ax.set_ylabel("Pearson R with stations")
    ax.set_title("R per series (stations with status OK)", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
