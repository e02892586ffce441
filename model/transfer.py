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
   and enhanced AMSR2 climatologies (per-pixel means), before and after transfer.
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
    tr = load_period(ds, cfg.train_years, region=cfg.region, sensor=schema.SENSOR_AMSRE)
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
    if cfg.matching == "meanstd":
        child.set_matching(src_mean, src_std, ref_mean, ref_std, tr.lat, tr.lon)
    elif cfg.matching != "none":
        raise ValueError(f"matching {cfg.matching!r}: expected 'meanstd' or 'none'")
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
        seam["truth_difference"] = seam_rms(era.truth[e_days].mean(0),
                                            ref.truth[ref.sensor == schema.SENSOR_AMSR2].mean(0),
                                            land)
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
                     "reference_years": list(cfg.reference_years)},
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
