"""Serving the app for the browser tests and the app benchmarks: a small demo world, a
stand-in checkpoint, and ``panel serve`` in a subprocess.

The browser tests serve the app on a world built here (a small grid over a few months),
never on the full demo world, and on a tiny untrained stand-in model: they test the app's
behaviour, not the model's skill.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the small world of the app tests: 32 x 40 cells, March to August 2015
SMALL_WORLD = dict(west=-100.0, south=30.0, east=-90.0, north=38.0, start="2015-03-01",
                   end="2015-08-31", n_stations=8, seed=7)
SMALL_DATE = "2015-06-01"


def build_small_world(out: Path) -> Path:
    """Build the small demo world (a few seconds)."""
    from data_catalog.demo import build_demo_world

    return build_demo_world(out, progress=False, **SMALL_WORLD)


def write_standin_checkpoint(folder: Path, lookback: int = 4) -> Path:
    """A tiny untrained ConvLSTM saved as ``amsr2.pt`` (a stand-in for the shipped model)."""
    import torch

    from model.config import ModelConfig
    from model.tensors import NormStats
    from model.wrapper import GapFiller

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    m = GapFiller(ModelConfig(filters=[4, 4], head_filters=4),
                  NormStats(0.25, 0.05, 50.0, 20.0), {"sensor": "amsr2", "lookback": lookback})
    path = folder / "amsr2.pt"
    m.save(path)
    return path


def write_standin_errors(folder: Path, sd: float = 0.04) -> Path:
    """A stand-in error model beside the stand-in checkpoint of ``folder``: the same SD
    for every pixel-day (the app then shows ``filled_sm_uncertainty``: its map, the hover's
    ± SD and the series' band)."""
    import numpy as np

    from model import errors
    from model.wrapper import file_sha256

    ms = [np.full(int(np.prod(errors.SIZES[:k + 1])), sd ** 2)
          for k in range(len(errors.SIZES))]
    n = [np.full(m.size, errors.MIN_N, np.int64) for m in ms]
    meta = {"models": {"amsr2": {"checkpoint_sha256": file_sha256(folder / "amsr2.pt")}}}
    return errors.ErrorModel({"amsr2": errors.Table(ms, n)}, meta).save(
        errors.path_for(folder))


def prepare_workdir(work: Path, world: dict) -> tuple[Path, Path, Path]:
    """A benchmark's working folder: the demo world ``world`` (build parameters), a
    stand-in checkpoint (kept when already there) and the cache folder.

    Returns ``(world_store, checkpoint_dir, cache_dir)``.
    """
    from data_catalog.demo import build_demo_world

    work.mkdir(parents=True, exist_ok=True)
    store = build_demo_world(work / "world.zarr", progress=False, **world)
    ckpts = work / "checkpoints"
    if not (ckpts / "amsr2.pt").exists():
        write_standin_checkpoint(ckpts)
    return store, ckpts, work / "cache"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(env: dict, port: int, log_path: Path, timeout: float = 90.0,
          extra_args: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start ``panel serve app`` on 127.0.0.1:port and wait until it answers.

    ``extra_args`` are added to the ``panel serve`` command line.
    """
    cmd = [sys.executable, "-m", "panel", "serve", "app", "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}",
           "--num-threads", "2", *extra_args]
    from app.memory import SERVE_ENV  # served as `make serve` serves it

    with open(log_path, "wb") as log:
        # the child keeps its own descriptor of the log; ours is closed at once
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **SERVE_ENV, **env},
                                stdout=log,
                                stderr=subprocess.STDOUT)
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=2)
            return proc
        except OSError:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=30)
                return proc
            except OSError:
                time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"panel serve did not start in {timeout} s: "
                       f"{log_path.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
