"""The evaluation report files: ``evaluation.json``, ``evaluation_details.json``,
``evaluation.md`` (tables) and the figures ``evaluation.png`` (RMSE per method and sensor)
``evaluation_strata.png`` (RMSE against gap length, one line a method) and
``evaluation_reliability.png`` (the reliability diagram of ``filled_sm_uncertainty``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from model.strata import ASCAT_STRATA, CATEGORIES, GAP_DAY_BINS

TARGET_RATIO = 0.8
METHOD_ORDER = ("convlstm", "linear", "climatology", "dctpls", "ascat_cdf")
STRATA_FIGURE_ROWS = (("natural_gaps", "natural gaps"),
                      ("all_hidden", "hidden pixels, all schemes"))


def write_report(result: dict, details: dict, out: str | Path) -> list[Path]:
    """``evaluation.json`` (the report), ``evaluation_details.json``, ``evaluation.md``,
    ``evaluation.png`` (and ``evaluation_strata.png`` with strata) under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "evaluation.json", out / "evaluation_details.json", out / "evaluation.md",
             out / "evaluation.png"]
    paths[0].write_text(json.dumps(result, indent=2))
    paths[1].write_text(json.dumps(details, indent=2))
    paths[2].write_text(markdown(result, details))
    figure(result, paths[3])
    if result.get("strata"):
        paths.append(strata_figure(result["strata"], out / "evaluation_strata.png"))
        from model import calibration

        if any(s.get(calibration.KEY) for s in result["strata"].values()):
            paths.append(calibration.reliability_figure(result["strata"],
                                                        out / "evaluation_reliability.png"))
    return paths


def markdown(result: dict, details: dict) -> str:
    """The report as markdown tables."""
    lines = ["# Gap-filling accuracy (held-out periods)", ""]
    lines += [f"Note: {n}" for n in result.get("notes", [])]
    lines += [""] if result.get("notes") else []
    for sensor, scores in result["sensors"].items():
        det = details.get(sensor, {})
        lines += [f"## {sensor.upper()} (test year {det.get('test_year')}, baselines fitted "
                  f"on {det.get('train_years')})", "",
                  "| method | hidden RMSE | ubRMSE | bias | R | n | natural gaps RMSE | ubRMSE "
                  "| bias | R | n |", "|" + "---|" * 11]
        for m, s in scores.items():
            h, g = s["hidden"], s["natural_gaps"]
            lines.append(f"| {m} | {h['rmse']:.4f} | {h['ubrmse']:.4f} | {h['bias']:+.4f} | "
                         f"{h['r']:.3f} | {h['n']} | {g['rmse']:.4f} | {g['ubrmse']:.4f} | "
                         f"{g['bias']:+.4f} | {g['r']:.3f} | {g['n']} |")
        nf = det.get("calibrated_truth_hidden")
        if nf:
            lines += ["", f"The demo truth through a per-pixel linear calibration fitted on "
                          f"the training years (a perfect estimate of the true soil moisture, "
                          f"blind to the retrieval's persistent error) scores RMSE "
                          f"{nf['rmse']:.4f}, R {nf['r']:.3f} on the hidden pixels; / best "
                          f"baseline = {nf['rmse'] / det['best_baseline_hidden_rmse']:.3f}."]
        sub = det.get("convlstm_hidden_where_ascat")
        if sub:
            lines += ["", f"ConvLSTM on the hidden pixels where ASCAT exists (the ascat_cdf "
                          f"subset): RMSE {sub['rmse']:.4f}, R {sub['r']:.3f}, n {sub['n']}."]
        sub = det.get("convlstm_natural_gaps_where_ascat")
        if sub:
            lines += ["", f"ConvLSTM against the truth under natural gaps where ASCAT exists "
                          f"(the ascat_cdf subset): RMSE {sub['rmse']:.4f}, R {sub['r']:.3f}, "
                          f"n {sub['n']}.  The filled field is AMSR's: it carries AMSR's own "
                          f"bias and persistent retrieval error, which ASCAT does not share."]
        if "convlstm_over_best_baseline" in det:
            lines += ["", f"ConvLSTM / best baseline hidden RMSE: "
                          f"{det['convlstm_over_best_baseline']:.3f} (target <= {TARGET_RATIO}: "
                          f"{'met' if det['target_met'] else 'NOT met'})"]
        lines.append("")
    seam = result.get("seam", {})
    lines += ["## Seam AMSR-E / AMSR2", "",
              "RMS over land pixels of (enhanced AMSR-E climatology - enhanced AMSR2 "
              "climatology), m3 m-3:", "",
              f"* before transfer: {seam.get('before_transfer', math.nan):.4f}",
              f"* after transfer: {seam.get('after_transfer', math.nan):.4f}"]
    tdiff = details.get("seam", {}).get("truth_difference")
    if tdiff is not None:
        lines.append(f"* true soil moisture, same periods (natural variability): {tdiff:.4f}")
    cr = seam.get("climate_r_after_transfer", math.nan)
    if math.isfinite(cr):
        lines.append(f"* product's AMSR-E - AMSR2 climatology map against the true one: R "
                     f"{cr:.2f} (goal >= 0.8), RMS error "
                     f"{seam.get('climate_rmse_after_transfer', math.nan):.4f} (goal <= "
                     f"{seam.get('truth_difference', math.nan) / 2:.4f}, half the true RMS); "
                     f"before transfer R {seam.get('climate_r_before_transfer', math.nan):.2f}")
    lines += ["", "Units m3 m-3. `hidden`: observed pixels hidden under other days' gap "
              "patterns, scored against the hidden observation (whose independent "
              "day-to-day noise is a floor no method can beat); `natural_gaps`: scored "
              "against the true soil moisture.", ""]
    for name, s in result.get("strata", {}).items():
        lines += strata_markdown(name, s)
    from model.calibration import markdown_lines

    lines += markdown_lines(result.get("strata", {}))
    return "\n".join(lines)


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None or not math.isfinite(v) else format(v, spec)


def strata_rows(s: dict, ref: str) -> list[tuple[str, str, dict]]:
    """``(scheme, stratum, cell)`` rows of one test set's table against ``ref``."""
    rows = []
    if ref == "calibrated_truth" and "natural_gaps" in s:
        nat = s["natural_gaps"]
        rows.append(("natural gaps", "all", nat["all"]))
        rows += [("natural gaps", f"{lab} d", nat["gap_days"][lab]) for lab, _, _ in GAP_DAY_BINS]
        rows += [("natural gaps", c, nat["gap_category"][c]) for c in CATEGORIES.values()]
        rows += [("natural gaps", a.replace("_", " "), nat["ascat"][a]) for a in ASCAT_STRATA]
    for scheme in ("hidden_days", "spatial_blocks", "temporal_blocks"):
        if scheme in s:
            rows.append((scheme.replace("_", " "), "all", s[scheme]["all"]))
    if "all_hidden" in s:
        ah = s["all_hidden"]
        rows += [("all hidden", f"{lab} d", ah["gap_days"][lab]) for lab, _, _ in GAP_DAY_BINS]
        rows += [("all hidden", a.replace("_", " "), ah["ascat"][a]) for a in ASCAT_STRATA]
    return [(a, b, c) for a, b, c in rows if ref in c]


def strata_markdown(name: str, s: dict) -> list[str]:
    """One test set's strata as two tables (truth as the sensor sees it; observation)."""
    role = s.get("test_year_role", "?")
    span = s.get("model_train_years" if role == "training" else "model_val_years")
    warn = ("" if role == "held out" else
            f" **The test year is in the model's {role} years {span}: not a held-out score.**")
    cal = s.get("calibration") or {}
    design = s.get("design", {})
    lines = [f"## Strata: {name} ({s['sensor'].upper()} {s['test_year']}, ASCAT on "
             f"{s['ascat_fraction']:.0%} of the land pixel-days; test year: {role})", "",
             f"Baselines and calibration fitted on {s.get('baseline_fit_years')}.{warn}"]
    if cal:
        stored = (f" (the world's stored gain {cal['stored_gain']:.3f})"
                  if "stored_gain" in cal else "")
        lines.append(f"Calibration ({cal.get('method')}): median gain "
                     f"{_fmt(cal.get('median_gain'), '.3f')}{stored}, "
                     f"{cal.get('fitted_pixels')} pixels fitted, "
                     f"{cal.get('borrowed_pixels')} borrowed.")
    sb, tb = design.get("spatial_blocks", {}), design.get("temporal_blocks", {})
    windows = tb.get("windows", [])
    lines += [f"Hold-outs: {sb.get('blocks')} blocks of {sb.get('size')} x {sb.get('size')} "
              f"cells for the whole test year; {len(windows)} windows of {tb.get('days')} "
              f"days without AMSR ({', '.join('..'.join(w) for w in windows)}).", ""]
    for ref, title in (("calibrated_truth", "against the truth as the sensor sees it"),
                       ("observation", "against the hidden observation")):
        rows = strata_rows(s, ref)
        if not rows:
            continue
        methods = [m for m in METHOD_ORDER if m in rows[0][2][ref]["methods"]]
        lines += [f"### {name} {title} (RMSE m3/m3 / median per-pixel R)", "",
                  "| scheme | stratum | n | share | " + " | ".join(methods)
                  + " | best baseline | ConvLSTM / best |",
                  "|" + "---|" * (6 + len(methods))]
        for scheme, stratum, c in rows:
            sc = c[ref]
            vals = [f"{_fmt(sc['methods'][m]['rmse'], '.4f')} / "
                    f"{_fmt(sc['methods'][m]['r'], '.2f')}" for m in methods]
            lines.append(f"| {scheme} | {stratum} | {sc['n']} | {_fmt(c.get('share'), '.0%')} | "
                         + " | ".join(vals) + f" | {sc['best_baseline'] or '–'} | "
                         f"{_fmt(sc['convlstm_over_best'], '.3f')} |")
        lines.append("")
    lines += ["Days (d): to the nearest day the pixel was in the input.  Each method's RMSE and "
              "R are over the samples it fills (climatology: none in pixels never observed; "
              "ascat_cdf: none without ASCAT).  Best baseline: the one the ConvLSTM compares "
              "worst with, ConvLSTM RMSE / baseline RMSE on the samples both fill, among the "
              "baselines that fill at least a quarter of the stratum (and 100 samples).", ""]
    return lines


def figure(result: dict, path: str | Path) -> Path:
    """Bar charts of hidden-pixel and natural-gap RMSE per method and sensor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sensors = list(result["sensors"])
    fig, axes = plt.subplots(1, max(1, len(sensors)), figsize=(5 * max(1, len(sensors)), 3.5),
                             dpi=90, squeeze=False)
    for ax, sensor in zip(axes[0], sensors, strict=False):
        scores = result["sensors"][sensor]
        x = np.arange(len(scores))
        ax.bar(x - 0.2, [s["hidden"]["rmse"] for s in scores.values()], 0.4, label="hidden")
        ax.bar(x + 0.2, [s["natural_gaps"]["rmse"] for s in scores.values()], 0.4,
               label="natural gaps (truth)")
        ax.set_xticks(x, list(scores), rotation=20)
        ax.set_ylabel("RMSE (m3/m3)")
        ax.set_title(sensor.upper())
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def strata_figure(strata: dict, path: str | Path) -> Path:
    """RMSE against days to the nearest observation, one line a method: a column per test
    set, a row per scheme (natural gaps; all hidden pixels), against the calibrated truth
    (the observation where the world has no truth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(strata)
    labels = [lab for lab, _, _ in GAP_DAY_BINS]
    fig, axes = plt.subplots(len(STRATA_FIGURE_ROWS), max(1, len(names)),
                             figsize=(4.2 * max(1, len(names)), 3.2 * len(STRATA_FIGURE_ROWS)),
                             dpi=90, squeeze=False)
    for col, name in enumerate(names):
        for row, (scheme, title) in enumerate(STRATA_FIGURE_ROWS):
            ax = axes[row, col]
            sch = strata[name].get(scheme)
            ref = "calibrated_truth" if sch and "calibrated_truth" in sch["all"] else "observation"
            if not sch or ref not in sch["all"]:
                ax.set_axis_off()
                continue
            for m in METHOD_ORDER:
                y = [sch["gap_days"][lab][ref]["methods"].get(m, {}).get("rmse", math.nan)
                     for lab in labels]
                if np.isfinite(y).any():
                    ax.plot(range(len(labels)), y, marker="o", lw=2.2 if m == "convlstm" else 1.2,
                            label=m)
            ax.set_xticks(range(len(labels)), labels, fontsize=8)
            ax.set_xlabel("days to the nearest observation")
            ax.set_ylabel(f"RMSE vs {ref.replace('_', ' ')} (m3/m3)", fontsize=8)
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
