"""Inference throughput of the shipped ConvLSTM on this machine (``python -m bench.inference``).

Measures pixel-steps per second (batch x days x rows x cols per second) of

* ``model``: the shipped network as :meth:`model.wrapper.GapFiller.stream` runs it on the CPU
  (input-to-gate convolutions of all steps fused into one convolution outside the
  recurrence; the precision and memory format :func:`model.inference.configure_for_device`
  picks, reported in ``config``);
* ``naive``: a reference ConvLSTM of the same size (concatenate input and hidden state,
  one convolution per step, float32, contiguous NCHW);
* ``ceiling``: the same convolutions with no recurrence at all, each layer's
  ``(in + filters) -> 4 filters`` kernel and the head applied to all frames in one call,
  in the model's precision: the machine's practical ceiling for this arithmetic.

One intra-op thread (the setting of one worker process) unless ``--threads`` says otherwise.
Targets: ``speedup_vs_naive >= 1.5`` and ``fraction_of_ceiling >= 0.5``.

``--quick`` measures a 16 x 16 grid over 4 days once (a second), to check that the
benchmark still runs (a test does); its figures say nothing about the targets.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from torch import nn


def _time_interleaved(fns: dict[str, Callable[[], object]], repeats: int,
                      warmup: int = 2) -> dict[str, float]:
    """Best (minimum) wall seconds of each function, the functions run in turn.

    On a shared machine other processes only ever *add* time, so the minimum over
    interleaved repeats is the fairest estimate of each path's own cost.
    """
    for f in fns.values():
        for _ in range(warmup):
            f()
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def _shipped_config():
    """ModelConfig and lookback of the shipped checkpoint (or of configs/amsr2.yml)."""
    from model.config import CONFIG_DIR, ModelConfig, TrainConfig
    from model.inference import default_checkpoint

    ck = default_checkpoint()
    if ck.exists():
        meta = torch.load(ck, map_location="cpu", weights_only=True)["metadata"]
        return ModelConfig(**meta["model"]), int(meta.get("lookback", 32)), str(ck)
    cfg = TrainConfig.from_yaml(CONFIG_DIR / "amsr2.yml")
    return cfg.model, cfg.lookback, "configs/amsr2.yml (no shipped checkpoint)"


class _NaiveNet(nn.Module):
    def __init__(self, model):
        super().__init__()
        from model.network import NaiveConvLSTM2D

        self.layers = nn.ModuleList(NaiveConvLSTM2D.from_layer(layer)
                                    for layer in model.net.convlstm)
        self.head = model.net.head

    def forward(self, x):
        h = x
        for layer in self.layers:
            h, _ = layer(h)
        b, t, f, hh, ww = h.shape
        return self.head(h.reshape(b * t, f, hh, ww)).reshape(b, t, hh, ww)


def run(size: int = 64, steps: int | None = None, batch: int = 1, threads: int = 1,
        repeats: int = 7) -> dict:
    """Measure and return the report dict."""
    from model.inference import configure_for_device, cpu_bf16
    from model.tensors import NormStats
    from model.wrapper import GapFiller

    torch.set_num_threads(threads)
    mcfg, lookback, source = _shipped_config()
    t = steps or lookback
    torch.manual_seed(0)
    model = configure_for_device(GapFiller(mcfg, NormStats(0.25, 0.08, 50.0, 20.0)),
                                 torch.device("cpu"))
    x = torch.randn(batch, t, model.n_channels, size, size)
    pixel_steps = batch * t * size * size

    naive = _NaiveNet(model).eval()

    # ceiling: the same convolutions, batched over all frames, no recurrence
    dtype = model.amp_dtype or torch.float32
    fmt = torch.channels_last if model.channels_last else torch.contiguous_format
    convs = []
    cin = model.n_channels
    for f in mcfg.filters:
        convs.append(nn.Conv2d(cin + f, 4 * f, mcfg.kernel_size,
                               padding=mcfg.kernel_size // 2).to(memory_format=fmt))
        cin = f
    head = model.net.head
    frames = [torch.randn(batch * t, c.in_channels, size, size).to(memory_format=fmt)
              for c in convs]
    hin = torch.randn(batch * t, cin, size, size).to(memory_format=fmt)

    def ceiling():
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype,
                                                     enabled=dtype != torch.float32):
            for c, fr in zip(convs, frames, strict=True):
                c(fr)
            head(hin)

    def naive_run():
        with torch.inference_mode():
            naive(x)

    secs = _time_interleaved({"model": lambda: model.stream(x), "naive": naive_run,
                              "ceiling": ceiling}, repeats)
    secs_model, secs_naive, secs_ceiling = secs["model"], secs["naive"], secs["ceiling"]

    with torch.inference_mode():  # the optimised path gives the naive reference's numbers
        ref = naive(x) * model.norm[1] + model.norm[0]
    got, _ = model.stream(x)
    max_abs_diff = float((got - ref.clamp(0, 1)).abs().max())

    m, n, c = pixel_steps / secs_model, pixel_steps / secs_naive, pixel_steps / secs_ceiling
    return {
        "model_pixel_steps_per_s": m,
        "naive_pixel_steps_per_s": n,
        "ceiling_pixel_steps_per_s": c,
        "speedup_vs_naive": m / n,
        "fraction_of_ceiling": m / c,
        "config": {
            "source": source, "filters": list(mcfg.filters), "kernel_size": mcfg.kernel_size,
            "head_filters": mcfg.head_filters, "batch": batch, "steps": t, "height": size,
            "width": size, "channels": model.n_channels, "threads": threads,
            "model_precision": str(dtype).replace("torch.", ""),
            "model_channels_last": bool(model.channels_last),
            "ceiling_precision": str(dtype).replace("torch.", ""),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "bf16_supported": cpu_bf16(),
            "repeats": repeats,
            "timing": "best of interleaved repeats after 2 warm-up runs each",
            "model_vs_naive_max_abs_diff_m3m3": max_abs_diff,
            "torch": str(torch.__version__),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--size", type=int, default=64, help="grid rows = cols (default 64)")
    ap.add_argument("--steps", type=int, default=None, help="days (default: the lookback)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, one repeat: checks that the benchmark runs")
    a = ap.parse_args(argv)
    if a.quick:
        a.size, a.steps, a.repeats = 16, 4, 1
    res = run(a.size, a.steps, a.batch, a.threads, a.repeats)
    res["config"]["quick"] = a.quick
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"model   {res['model_pixel_steps_per_s']:,.0f} pixel-steps/s")
        print(f"naive   {res['naive_pixel_steps_per_s']:,.0f} pixel-steps/s  "
              f"(speedup {res['speedup_vs_naive']:.2f}x, target 1.5x)")
        print(f"ceiling {res['ceiling_pixel_steps_per_s']:,.0f} pixel-steps/s  "
              f"(fraction {res['fraction_of_ceiling']:.2f}, target 0.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
