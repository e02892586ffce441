"""Training of the ConvLSTM gap filler (``gapfill train``).

The loss counts only pixels whose target is a valid observation (RFI, dense vegetation,
frozen ground, swath gaps and not-land have weight zero), with hidden observed pixels
weighted so the model learns to fill rather than to copy.  Split by years, early
stopping on the validation year's hidden-pixel RMSE, seeded, tqdm progress, loss curve.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from data_catalog import schema
from model.config import TrainConfig
from model.datasets import (
    PeriodData,
    Sampler,
    load_period,
    norm_stats_of,
    open_world,
    period_bounds,
    region_of,
)
from model.wrapper import GapFiller, code_version

log = logging.getLogger(__name__)

SENSOR_CODES = {"amsr2": schema.SENSOR_AMSR2, "amsre": schema.SENSOR_AMSRE}


def masked_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean squared error over pixels with non-zero weight.

    ``sum(w (pred - target)^2) / sum(w)``; a pixel of weight zero (no valid target) cannot
    change the loss, whatever its prediction or target (NaN included).
    """
    w = weight.to(pred.dtype)
    keep = w > 0
    diff = torch.where(keep, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return (w * diff * diff).sum() / w.sum().clamp_min(1e-8)


def seed_everything(seed: int) -> None:
    # the sampler uses its own np.random.Generator; this seeds the libraries' globals
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def run_batch(model: GapFiller, batch: dict[str, torch.Tensor], device: torch.device,
              *, no_grad_convlstm: bool = False) -> torch.Tensor:
    """Normalised prediction of a sampled batch's scored days (burn-in without gradient)."""
    x = batch["x"].to(device)
    k = int(batch["burn_in"])
    state = None
    if k > 0:
        with torch.no_grad():
            _, state = model(x[:, :k])
        state = [(h.detach(), c.detach()) for h, c in state]
    if no_grad_convlstm:  # frozen recurrent layers: only the head needs a graph
        net = model.net
        with torch.no_grad():
            h = x[:, k:]
            for i, layer in enumerate(net.convlstm):
                h, _ = layer(h, None if state is None else state[i])
        b, t, f, hh, ww = h.shape
        return net.head(h.reshape(b * t, f, hh, ww)).reshape(b, t, hh, ww)
    y, _ = model(x[:, k:], state)
    return y


def evaluate_batches(model: GapFiller, batches: list[dict], device: torch.device) -> float:
    """RMSE (m3 m-3) on the hidden pixels of fixed validation batches."""
    se, n = 0.0, 0.0
    std = model.stats.amsr_std
    model.eval()
    with torch.no_grad():
        for b in batches:
            y = run_batch(model, b, device)
            hid = (b["weight"].to(device) > 0) & (b["x"][:, int(b["burn_in"]):, 1].to(device)
                                                   == 0)
            d = (y - b["target"].to(device))[hid] * std
            se += float((d * d).sum())
            n += float(hid.sum())
    return math.sqrt(se / max(n, 1.0))


def fit(model: GapFiller, train: PeriodData, val: PeriodData, cfg: TrainConfig, *,
        params: Iterable[torch.nn.Parameter] | None = None, device: str | torch.device = "cpu",
        progress: bool = True, no_grad_convlstm: bool = False) -> dict[str, Any]:
    """Optimise ``model`` in place; returns the history and keeps the best weights.

    Stops after ``cfg.epochs`` epochs, ``cfg.patience`` epochs without improvement of
    the validation hidden-pixel RMSE, or ``cfg.max_minutes``.
    """
    device = torch.device(device)
    model.to(device)
    stats = model.stats
    rng = np.random.default_rng(cfg.seed)
    sampler = Sampler(train, stats, cfg, lead=model.lead_days)
    vrng = np.random.default_rng(cfg.seed + 1)
    vsampler = Sampler(val, stats, cfg, lead=model.lead_days)
    val_batches = [vsampler.sample(vrng, burn_in=min(cfg.burn_in_max, 8))
                   for _ in range(cfg.val_batches)]
    params = [p for p in (params if params is not None else model.parameters())
              if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * cfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total,
                                                pct_start=0.15)
    hist: dict[str, list] = {"epoch": [], "train_loss": [], "val_rmse": [], "wall_s": []}
    best, best_state, bad = math.inf, copy.deepcopy(model.state_dict()), 0
    t_start = time.perf_counter()
    stop_reason = "epochs"
    bar = tqdm(total=total, desc=f"train {cfg.sensor}", disable=not progress, unit="step")
    for epoch in range(cfg.epochs):
        model.train()
        losses = []
        for _ in range(cfg.steps_per_epoch):
            batch = sampler.sample(rng)
            y = run_batch(model, batch, device, no_grad_convlstm=no_grad_convlstm)
            loss = masked_loss(y, batch["target"].to(device), batch["weight"].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
        v = evaluate_batches(model, val_batches, device)
        wall = time.perf_counter() - t_start
        hist["epoch"].append(epoch + 1)
        hist["train_loss"].append(float(np.mean(losses)))
        hist["val_rmse"].append(v)
        hist["wall_s"].append(wall)
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_rmse=f"{v:.4f}")
        log.info("epoch %d: train loss %.4f, val hidden RMSE %.4f m3/m3 (%.0f s)",
                 epoch + 1, np.mean(losses), v, wall)
        if v < best - 1e-5:
            best, best_state, bad = v, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= cfg.patience:
                stop_reason = "early_stopping"
                break
        if wall > cfg.max_minutes * 60:
            stop_reason = "max_minutes"
            break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    hist.update(best_val_rmse=best, stop_reason=stop_reason,
                wall_s_total=time.perf_counter() - t_start,
                steps=len(hist["epoch"]) * cfg.steps_per_epoch)
    return hist


def plot_loss(hist: dict, path: str | Path, title: str = "") -> Path:
    """Save the training loss and validation RMSE per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=90)
    ax.plot(hist["epoch"], hist["train_loss"], "o-", label="train loss (weighted MSE, norm.)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss")
    ax2 = ax.twinx()
    ax2.plot(hist["epoch"], hist["val_rmse"], "s-", color="C1",
             label="val RMSE hidden pixels (m3/m3)")
    ax2.set_ylabel("val RMSE (m3/m3)")
    fig.legend(loc="upper right", fontsize=8)
    ax.set_title(title or "training")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def train(cfg: TrainConfig, *, world: xr.Dataset | str | Path | None = None,
          progress: bool = True, device: str | torch.device = "cpu",
          out: str | Path | None = None) -> tuple[GapFiller, dict]:
    """Train a base model from scratch and write its checkpoint and loss curve.

    Returns the model and a summary dict (history, checkpoint path, sha256).
    """
    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    ds = open_world(world if world is not None else cfg.world)
    sensor = SENSOR_CODES[cfg.sensor]
    tr = load_period(ds, cfg.train_years, region=cfg.region, sensor=sensor,
                     exclude=cfg.exclude_years)
    va = load_period(ds, cfg.val_years, region=cfg.region, sensor=sensor)
    stats = norm_stats_of(tr)
    meta = {
        "sensor": cfg.sensor,
        "config": cfg.to_dict(),
        "training": {"period": period_bounds(tr), "validation": period_bounds(va),
                     "test_years": list(cfg.test_years), "region": region_of(tr),
                     "grid_shape": list(tr.amsr.shape[1:])},
        "data_fingerprint": tr.fingerprint(),
        "code_version": code_version(),
        "parent": None,
        "lookback": cfg.lookback,
    }
    model = GapFiller(cfg.model, stats, meta)
    hist = fit(model, tr, va, cfg, device=device, progress=progress)
    model.metadata["training"]["history"] = hist
    out = Path(out or cfg.out)
    sha = model.save(out)
    png = plot_loss(hist, out.with_name(out.stem + "_loss.png"), f"{cfg.sensor} base model")
    log.info("wrote %s (sha256 %s) and %s", out, sha[:12], png)
    return model, {"checkpoint": str(out), "sha256": sha, "loss_plot": str(png),
                   "history": hist}
