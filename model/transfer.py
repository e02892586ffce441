"""Transfer learning AMSR2 -> AMSR-E (``gapfill transfer``).

1. The parent (AMSR2) model fills the AMSR2 reference years: the *enhanced AMSR2*, whose
   per-pixel mean and standard deviation are the reference climatology.
2. The parent also fills the AMSR-E training years from raw AMSR-E; per-pixel mean/std of
   that gap-free field describe AMSR-E's climatology (estimated from gap-free fields on
   both sides, so the seasonal sampling of the gaps does not bias the matching).
3. AMSR-E inputs and targets are matched to the reference,
   ``x' = (x - mu_E) / sd_E * sd_2 + mu_2`` per pixel, and the model is fine-tuned on the
   AMSR-E years with the ConvLSTM layers frozen (by default).
4. The seam report: RMS over land pixels of the difference between the enhanced AMSR-E
   and enhanced AMSR2 climatologies (per-pixel means), before and after transfer, and how
   well the product keeps the true climate difference of the two periods (where the world
   has a truth): the correlation of the product's AMSR-E-minus-AMSR2 climatology map with
   the true one and the RMS of their difference.

Matching (``cfg.matching``):

* ``"meanstd"`` (step 1-2): both sensors' fields matched over *their own* periods, so the
  true climate difference of 2003-2011 and 2012-2023 is matched away with the sensor
  difference.
* ``"ascat_bridge"``: each sensor is matched to ASCAT's scale over the days both observe
  (AMSR-E with ASCAT in the training years, AMSR2 with ASCAT in the reference years); the
  AMSR-E -> AMSR2 map is AMSR-E -> ASCAT followed by ASCAT -> AMSR2.  ASCAT is one
  instrument series over both periods, so the map carries the sensor difference but no
  period climate.  Pixels with fewer than ``MIN_PAIRS`` paired days (dense forest,
  permanent RFI) fall back to ``"meanstd"``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from data_catalog import schema
from model.config import TransferConfig
from model.datasets import PeriodData, load_period, open_world, period_bounds, region_of
from model.inference import stream_arrays
from model.train import fit, plot_loss, seed_everything
from model.wrapper import GapFiller, code_version, file_sha256

log = logging.getLogger(__name__)


def enhanced(model: GapFiller, d: PeriodData, *, progress: bool = False) -> np.ndarray:
    """Gap-free field of a period: (matched) observations where observed, model elsewhere."""
    amsr = model.to_reference(d.amsr, d.lat, d.lon)
    out, _ = stream_arrays(model, amsr, d.valid, d.ascat, d.doy, progress=progress)
    return np.where(d.valid, amsr, out).astype(np.float32)


def pixel_stats(field: np.ndarray, days: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and standard deviation over (selected) days."""
    f = field if days is None else field[days]
    return f.mean(0), np.maximum(f.std(0), 1e-3)


MIN_PAIRS = 60


def paired_stats(amsr: np.ndarray, valid: np.ndarray, ascat: np.ndarray,
                 days: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-pixel mean/std of AMSR and of ASCAT over the selected days both observe, and the
    number of those days: ``(m_amsr, s_amsr, m_ascat, s_ascat, n)``, NaN where none."""
    both = valid & np.isfinite(ascat) & days[:, None, None]
    n = both.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = []
        for x in (amsr, ascat):
            v = np.where(both, x, 0.0).astype(np.float64)
            m = v.sum(0) / n
            var = np.where(both, (x - m) ** 2, 0.0).sum(0) / n
            out += [m, np.sqrt(var)]
    return (*out, n)


def ascat_bridge(src: PeriodData, ref: PeriodData, fallback: tuple[np.ndarray, ...],
                 src_sensor: int, ref_sensor: int) -> tuple[tuple[np.ndarray, ...], float]:
    """Matching maps ``(mu_E, sd_E, mu_2, sd_2)`` of ``x' = (x - mu_E) / sd_E * sd_2 + mu_2``
    through ASCAT's scale (module docstring), and the share of land pixels bridged (the
    others keep ``fallback``, the ``meanstd`` maps)."""
    me, se, ma1, sa1, n1 = paired_stats(src.amsr, src.valid, src.ascat,
                                        src.sensor == src_sensor)
    m2, s2, ma2, sa2, n2 = paired_stats(ref.amsr, ref.valid, ref.ascat,
                                        ref.sensor == ref_sensor)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd_2 = s2 * sa1 / sa2
        mu_2 = m2 + s2 * (ma1 - ma2) / sa2
    ok = ((n1 >= MIN_PAIRS) & (n2 >= MIN_PAIRS) & (se > 1e-3) & (sa2 > 1e-3)
          & np.isfinite(sd_2) & np.isfinite(mu_2))
    maps = tuple(np.where(ok, b, f).astype(np.float32)
                 for b, f in zip((me, se, mu_2, sd_2), fallback, strict=True))
    return maps, float(ok[src.land].mean())


def climate_difference(product: np.ndarray, truth: np.ndarray, land: np.ndarray
                       ) -> dict[str, float]:
    """How well a product keeps a true climatology-difference map (AMSR-E era - AMSR2 era):
    ``r`` Pearson correlation of the two maps over land, ``rmse`` RMS of product - truth,
    ``truth_rms`` RMS of the true difference (the goal: ``rmse <= truth_rms / 2``)."""
    p, t = product[land].astype(np.float64), truth[land].astype(np.float64)
    return {"r": float(np.corrcoef(p, t)[0, 1]), "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
            "truth_rms": float(np.sqrt(np.mean(t * t)))}


def seam_rms(clim_a: np.ndarray, clim_b: np.ndarray, land: np.ndarray) -> float:
    """RMS over land pixels of the difference of two per-pixel climatologies (m3 m-3)."""
    d = (clim_a - clim_b)[land]
    return float(np.sqrt(np.mean(d * d)))


def transfer(cfg: TransferConfig, parent_path: str | Path, *,
             world: xr.Dataset | str | Path | None = None, progress: bool = True,
             device: str | torch.device = "cpu", out: str | Path | None = None
             ) -> tuple[GapFiller, dict]:
    """Fine-tune an AMSR2 model on AMSR-E; writes the checkpoint and returns a summary."""
    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    parent = GapFiller.load(parent_path, device)
    ds = open_world(world if world is not None else cfg.world)
    ref = load_period(ds, cfg.reference_years, region=cfg.region, sensor=schema.SENSOR_AMSR2)
    tr = load_period(ds, cfg.train_years, region=cfg.region, sensor=schema.SENSOR_AMSRE,
                     exclude=cfg.exclude_years)
    va = load_period(ds, cfg.val_years, region=cfg.region, sensor=schema.SENSOR_AMSRE)
    fingerprint = tr.fingerprint()  # of the data as read, before the matching below
    land = tr.land

    log.info("enhanced AMSR2 reference %s..%s", *period_bounds(ref))
    ref_enh = enhanced(parent, ref, progress=progress)
    ref_mean, ref_std = pixel_stats(ref_enh, ref.sensor == schema.SENSOR_AMSR2)
    log.info("parent on raw AMSR-E %s..%s", *period_bounds(tr))
    src_enh = enhanced(parent, tr, progress=progress)
    src_mean, src_std = pixel_stats(src_enh, tr.sensor == schema.SENSOR_AMSRE)

    child = GapFiller(parent.model_config, parent.stats, {})
    child.load_state_dict(parent.state_dict())
    child.to(parent.device)
    bridged = None
    if cfg.matching == "meanstd":
        child.set_matching(src_mean, src_std, ref_mean, ref_std, tr.lat, tr.lon)
    elif cfg.matching == "ascat_bridge":
        maps, bridged = ascat_bridge(tr, ref, (src_mean, src_std, ref_mean, ref_std),
                                     schema.SENSOR_AMSRE, schema.SENSOR_AMSR2)
        log.info("ASCAT bridge on %.0f %% of land pixels", 100 * bridged)
        child.set_matching(*maps, tr.lat, tr.lon)
    elif cfg.matching != "none":
        raise ValueError(f"matching {cfg.matching!r}: expected 'meanstd', 'ascat_bridge' "
                         "or 'none'")
    for d in (tr, va):
        d.amsr = child.to_reference(d.amsr, d.lat, d.lon)

    if cfg.freeze_convlstm:
        for p in child.net.convlstm.parameters():
            p.requires_grad_(False)
    params = [p for p in child.parameters() if p.requires_grad]
    log.info("fine-tuning %d of %d parameters (ConvLSTM frozen: %s)",
             sum(p.numel() for p in params), sum(p.numel() for p in child.parameters()),
             cfg.freeze_convlstm)
    hist = fit(child, tr, va, cfg, params=params, device=device, progress=progress,
               no_grad_convlstm=cfg.freeze_convlstm)
    for p in child.parameters():
        p.requires_grad_(True)

    # ---- the seam: enhanced AMSR-E vs enhanced AMSR2 climatology, before and after
    era = load_period(ds, [cfg.train_years[0], 2011], region=cfg.region,
                      sensor=schema.SENSOR_AMSRE)
    e_days = era.sensor == schema.SENSOR_AMSRE
    ref_clim = ref_enh[ref.sensor == schema.SENSOR_AMSR2].mean(0)
    before = enhanced(parent, era, progress=progress)[e_days].mean(0)
    after = enhanced(child, era, progress=progress)[e_days].mean(0)
    seam = {"before_transfer": seam_rms(before, ref_clim, land),
            "after_transfer": seam_rms(after, ref_clim, land)}
    if era.truth is not None and ref.truth is not None:
        true_diff = (era.truth[e_days].mean(0)
                     - ref.truth[ref.sensor == schema.SENSOR_AMSR2].mean(0))
        seam["truth_difference"] = seam_rms(true_diff, 0.0, land)
        for key, f in (("before_transfer", before), ("after_transfer", after)):
            c = climate_difference(f - ref_clim, true_diff, land)
            seam[f"climate_r_{key}"], seam[f"climate_rmse_{key}"] = c["r"], c["rmse"]
        log.info("climate difference AMSR-E - AMSR2 after transfer: R %.2f with the true "
                 "map, RMS error %.4f (true RMS %.4f)", seam["climate_r_after_transfer"],
                 seam["climate_rmse_after_transfer"], seam["truth_difference"])
    log.info("seam (RMS of climatology difference, m3/m3): before %.4f, after %.4f",
             seam["before_transfer"], seam["after_transfer"])

    child.metadata = {
        "sensor": "amsre",
        "model": parent.metadata["model"],
        "config": cfg.to_dict(),
        "training": {"period": period_bounds(tr), "validation": period_bounds(va),
                     "test_years": list(cfg.test_years), "region": region_of(tr),
                     "grid_shape": list(tr.amsr.shape[1:]), "history": hist,
                     "reference_period": period_bounds(ref)},
        "data_fingerprint": fingerprint,
        "code_version": code_version(),
        "parent": {"path": str(parent_path), "sha256": file_sha256(parent_path),
                   "sensor": parent.sensor,
                   "data_fingerprint": parent.metadata.get("data_fingerprint")},
        "matching": {"method": cfg.matching, "reference": "enhanced AMSR2 (parent model)",
                     "reference_years": list(cfg.reference_years),
                     "bridged_share": bridged},
        "freeze_convlstm": cfg.freeze_convlstm,
        "lookback": parent.metadata.get("lookback", cfg.lookback),
        "seam": seam,
    }
    out = Path(out or cfg.out)
    sha = child.save(out)
    png = plot_loss(hist, out.with_name(out.stem + "_loss.png"), "AMSR-E transfer")
    seam_png = plot_seam(before, after, ref_clim, land, out.with_name(out.stem + "_seam.png"))
    log.info("wrote %s (sha256 %s)", out, sha[:12])
    return child, {"checkpoint": str(out), "sha256": sha, "loss_plot": str(png),
                   "seam_plot": str(seam_png), "seam": seam, "history": hist}


def plot_seam(before: np.ndarray, after: np.ndarray, ref: np.ndarray, land: np.ndarray,
              path: str | Path) -> Path:
    """Maps of the climatology difference enhanced AMSR-E - enhanced AMSR2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), dpi=80)
    for ax, f, title in ((axes[0], before, "before transfer"), (axes[1], after,
                                                                  "after transfer")):
        d = np.where(land, f - ref, np.nan)
        im = ax.imshow(d, origin="lower", cmap="RdBu", vmin=-0.06, vmax=0.06)
        ax.set_title(f"{title}: RMS {seam_rms(f, ref, land):.4f}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes, label="AMSR-E - AMSR2 climatology (m3/m3)", shrink=0.8)
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
