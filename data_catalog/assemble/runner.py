"""Running an assembly: the work folder, resumption, blocks of days on Dask, progress.

A world ``NAME.zarr`` is built in the work folder ``.NAME.zarr.assembling`` beside it:

``world.zarr``
    the store being written (``complete: false``);
``request.json``
    the request's fingerprint: a folder left by another request is started over;
``ascat/cell-NNNN.npy``
    daily grids of H SAF cells (:mod:`.hsaf`), each with its fingerprint;
``blocks/block-NNNNN.json``
    one per finished block of days (one time chunk): its fingerprint, the radiometer of
    each day, counts; written after the block's chunks;
``lock``
    held (``flock``) while a run writes, so two runs never share a folder.

Blocks are independent tasks: one at a time in this process (the default), on a local
``dask.distributed`` cluster of ``workers`` processes, or on an existing cluster
(``scheduler``).  Memory is one block's arrays and one day's files, whatever the number of
days.  A run killed at any point (even ``kill -9``) keeps its finished blocks; the same
command resumes, rebuilding only blocks whose files changed, and gives the same world as
an uninterrupted run.  When every block is done the radiometers, the provenance and
``complete: true`` are written and the store is renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import numpy as np

from data_catalog import locations, schema
from data_catalog.assemble import days as day_readers
from data_catalog.assemble import hsaf, provenance, store
from data_catalog.assemble.plan import Plan, make_plan
from data_catalog.errors import DataError
from data_catalog.worlds import replace_store

log = logging.getLogger(__name__)

#: test hook: the process kills itself (SIGKILL) after this many blocks of the run
KILL_ENV = "GAPFILL_ASSEMBLE_KILL_AFTER"


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.assembling"


def default_out(plan: Plan) -> Path:
    """``$GAPFILL_WORLDS/<first AMSR source>_<start>_<end>.zarr``."""
    return locations.worlds_dir() / f"{plan.amsr[0].source}_{plan.start}_{plan.end}.zarr"


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- one block
def run_block(plan: Plan, k: int, work: str, fingerprint: str) -> dict:
    """Read, grid and write block ``k``, then mark it done (a Dask task)."""
    import psutil

    t0 = time.perf_counter()
    me = psutil.Process()
    io0, cpu0 = me.io_counters().read_chars, sum(me.cpu_times()[:2])
    a, b = plan.blocks()[k]
    n = b - a
    _, ny, nx = plan.shape
    amsr = np.full((n, ny, nx), np.nan, np.float32)
    gap = np.full((n, ny, nx), schema.NO_OVERPASS, np.int8)
    ascat = np.full((n, ny, nx), np.nan, np.float32)
    err = np.full((n, ny, nx), np.nan, np.float32) if plan.amsr_error else None
    sensor = plan.default_sensor(a, b)
    for i, d in enumerate(plan.days[a:b]):
        day = str(d)
        for p in plan.amsr:
            if day in p.days:
                amsr[i], gap[i], sensor[i], e = day_readers.read_amsr_day(p, p.days[day], day,
                                                                          plan)
                if err is not None and e is not None:
                    err[i] = e
        if day in plan.ascat.days:
            ascat[i] = day_readers.read_ascat_day(plan.ascat, plan.ascat.days[day], day, plan)
    if plan.cells:
        hsaf.fill_block(plan, work, a, b, ascat)
    land = plan.land
    gap[:, ~land] = schema.NOT_LAND
    amsr[gap != schema.OBSERVED] = np.nan
    ascat[:, ~land] = np.nan
    if err is not None:
        err[~np.isfinite(amsr)] = np.nan
    t1 = time.perf_counter()
    store.write_block(Path(work) / "world.zarr", a, b, amsr, gap, ascat, err)
    info = {"block": k, "days": n, "fingerprint": fingerprint,
            "read_s": round(t1 - t0, 3), "write_s": round(time.perf_counter() - t1, 3),
            "sensor": sensor.astype(int).tolist(),
            "observed": int((gap == schema.OBSERVED).sum()),
            "ascat_values": int(np.isfinite(ascat).sum()),
            "error_values": 0 if err is None else int(np.isfinite(err).sum()),
            "land_pixel_days": int(land.sum()) * n,
            "bytes_read": int(me.io_counters().read_chars - io0),
            "cpu_s": round(sum(me.cpu_times()[:2]) - cpu0, 3),
            "pid": os.getpid(),
            "seconds": round(time.perf_counter() - t0, 3)}
    blocks = Path(work) / "blocks"
    blocks.mkdir(exist_ok=True)
    _atomic_json(blocks / f"block-{k:05d}.json", info)
    return info


# ---------------------------------------------------------------- running tasks
def _warm_worker() -> bool:
    """Import what blocks use in a Dask worker (about a second of CPU: xarray imports
    dask.array, and with it scipy, when the first dataset is made)."""
    import dask.array  # noqa: F401
    import netCDF4  # noqa: F401
    import psutil  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    from data_catalog.readers import cci_images, lprm  # noqa: F401

    return True


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int):
    """None (run in this process), or a ``distributed.Client``."""
    if not scheduler and workers <= 1:
        yield None
        return
    from distributed import Client, LocalCluster

    for name in list(logging.root.manager.loggerDict):  # start/stop chatter
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            # dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536 (memory back to the
            # system at once); glibc then keeps its mmap threshold at 128 kB, every whole-
            # array HDF5 chunk buffer (2-4 MB a variable of a global day) is a fresh mmap,
            # and blocks ran about 2x slower than in this process (median of 4 runs on the
            # shared machine): not for ours
            import dask

            stack.enter_context(dask.config.set(
                {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}))
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.WARNING))
            client = stack.enter_context(Client(cluster))
        yield client


def _run(client, plan, fn, tasks: list[tuple], done) -> None:
    """``fn(plan, *task)`` for every task, calling ``done(result)`` as each finishes
    (``plan``: the plan itself, or its future scattered to the cluster's workers)."""
    if client is None:
        for task in tasks:
            done(fn(plan, *task))
        return
    from distributed import as_completed

    futures = [client.submit(fn, plan, *task, pure=False) for task in tasks]
    try:
        for fut in as_completed(futures):
            done(fut.result())  # raises the worker's exception here
    finally:
        client.cancel(futures)


# ---------------------------------------------------------------- the command
def assemble(amsr: list[str], ascat: str, region, start, end, out: str | Path | None = None,
             *, catalog: str | Path | None = None, scheduler: str | None = None,
             workers: int = 1, force: bool = False, progress: bool = True) -> dict:
    """Assemble (or resume) a canonical world from catalog sources.

    Parameters
    ----------
    amsr
        AMSR source names (LPRM, CCI/C3S PASSIVE images); at most one file per day
        among them.
    ascat
        ASCAT source name (H SAF ragged cells with their WARP5 grid, CCI/C3S ACTIVE
        images).
    region
        ``(W, S, E, N)`` in degrees: the world holds every 0.25 degree cell it overlaps.
    start, end
        First and last day, ``YYYY-MM-DD``.
    out
        The store; default :func:`default_out` under ``$GAPFILL_WORLDS``.
    catalog
        Catalog file (default ``$GAPFILL_CATALOG`` or the built-in one).
    scheduler
        Address of a running ``dask.distributed`` scheduler to run the blocks on.
    workers
        Without ``scheduler``: more than 1 starts a local cluster of that many processes.
    force
        Replace an existing store that is not this same world.
    progress
        Show tqdm progress bars.

    Returns
    -------
    dict
        A summary: ``out``, ``days``, ``blocks``, ``blocks_reused``, ``files``, ``seconds``,
        fractions observed, ``reused`` (the store was already this world), ...

    Raises
    ------
    GapfillError
        Bad input (see :mod:`data_catalog.assemble.plan`), or ``out`` holds something else.
    """
    t_start = time.perf_counter()
    plan = make_plan(list(amsr), ascat, region, start, end, catalog=catalog)
    out = Path(out if out is not None else default_out(plan)).absolute()
    attrs = provenance.root_attrs(plan, out, catalog)
    if out.exists():
        if store.is_complete(out, attrs["fingerprint"]) and not force:
            log.info("%s is already this world", out)
            return {"out": str(out), "reused": True, **_counts(plan, None)}
        if not force:
            raise DataError("exists and is not this world (other sources, region, period or "
                            "changed files); use --force to replace it", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = work_dir(out)
    work.mkdir(exist_ok=True)
    with _locked(work, out):
        fps = plan.block_fingerprints()
        _prepare(work, plan, attrs)
        timing: dict = {}
        info = _run_all(plan, work, fps, scheduler, workers, progress, timing)
        sensor = np.concatenate([np.asarray(info[k]["sensor"], np.int8)
                                 for k in range(len(fps))])
        provenance.write_group(work / "world.zarr", plan)
        store.finish(work / "world.zarr", sensor, attrs)
        replace_store(work / "world.zarr", out)
    shutil.rmtree(work, ignore_errors=True)
    summary = {"out": str(out), "reused": False, **_counts(plan, info), **timing,
               "seconds": round(time.perf_counter() - t_start, 2)}
    if summary["ascat_fraction"] == 0:
        log.warning("ASCAT source %r gave no value for %s..%s in this region: ascat_sm is all "
                    "missing", plan.ascat.source, plan.start, plan.end)
    log.info("assembled %s: %d days in %.1f s", out, len(plan.days), summary["seconds"])
    return summary


@contextlib.contextmanager
def _locked(work: Path, out: Path):
    fh = open(work / "lock", "w")  # held for the whole run
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError("another `gapfill assemble` is writing this world now", out) \
                from None
        yield
    finally:
        fh.close()


def _prepare(work: Path, plan: Plan, attrs: dict) -> None:
    """Keep the work folder of this request, start over for any other."""
    req = _read_json(work / "request.json")
    if req is not None and req.get("fingerprint") != plan.fingerprint():
        log.warning("%s holds an unfinished world of another request: starting over", work)
        for name in ("world.zarr", "blocks", "ascat"):
            shutil.rmtree(work / name, ignore_errors=True)
    _atomic_json(work / "request.json", {"fingerprint": plan.fingerprint(),
                                         "request": plan.request()})
    world = work / "world.zarr"
    if store.stored_attrs(world).get("parameters") != attrs["parameters"]:
        tmp = work / "world.zarr.new"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(world, ignore_errors=True)
        store.create(tmp, plan, attrs)
        os.replace(tmp, world)
        shutil.rmtree(work / "blocks", ignore_errors=True)


def _run_all(plan: Plan, work: Path, fps: list[str], scheduler, workers, progress,
             timing: dict) -> dict[int, dict]:
    """Run the H SAF cells and blocks not done yet; ``timing`` gets the seconds of the
    cluster's start, the cells and the blocks."""
    from tqdm.auto import tqdm

    info: dict[int, dict] = {}
    for k in range(len(fps)):
        m = _read_json(work / "blocks" / f"block-{k:05d}.json")
        if m is not None and m.get("fingerprint") == fps[k]:
            info[k] = {**m, "reused": True}
    cells = [j for j in plan.cells if not hsaf.is_done(work, j)]
    blocks = [(k, str(work), fps[k]) for k in range(len(fps)) if k not in info]
    kill_after = int(os.environ.get(KILL_ENV, "0") or 0)
    done_now = 0
    t0 = time.perf_counter()
    with _client(scheduler, workers) as client:
        shared = plan
        if client is not None:
            client.run(_warm_worker)  # imports once per worker, before the clock of blocks
            # sent once to the cluster: every task of both phases shares it
            shared = client.scatter(plan, broadcast=True, hash=False)
        t1 = time.perf_counter()
        timing["startup_s"] = round(t1 - t0, 3)
        if cells:
            with tqdm(total=len(cells), unit="cell", desc="ASCAT cells",
                      disable=not progress) as bar:
                _run(client, shared, hsaf.run_cell, [(j, str(work)) for j in cells],
                     lambda r: bar.update(1))
        t2 = time.perf_counter()
        timing["cells_s"] = round(t2 - t1, 3)
        if not blocks:
            return info
        days_done = sum(m["days"] for m in info.values())
        with tqdm(total=len(plan.days), initial=days_done, unit="day", desc="assemble",
                  disable=not progress) as bar:

            def block_done(r: dict) -> None:
                nonlocal done_now
                info[r["block"]] = r
                bar.update(r["days"])
                done_now += 1
                if kill_after and done_now >= kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)

            _run(client, shared, run_block, blocks, block_done)
        timing["blocks_s"] = round(time.perf_counter() - t2, 3)
    return info


def _counts(plan: Plan, info: dict[int, dict] | None) -> dict:
    out = {"days": len(plan.days), "lat": len(plan.lat), "lon": len(plan.lon),
           "blocks": len(plan.blocks()), "files": len(plan.files),
           "bytes_in_files": int(sum(f["size"] for f in plan.files)),
           "ascat_cells": len(plan.cells), "amsr_sm_error": plan.amsr_error}
    if info is None:
        return out
    land = sum(m["land_pixel_days"] for m in info.values()) or 1
    ran = [m for m in info.values() if not m.get("reused")]
    out.update({
        "blocks_reused": len(info) - len(ran),
        "observed_fraction": round(sum(m["observed"] for m in info.values()) / land, 4),
        "ascat_fraction": round(sum(m["ascat_values"] for m in info.values()) / land, 4),
        # observed pixel-days that carry the product's own error
        "error_fraction": round(sum(m.get("error_values", 0) for m in info.values())
                                / max(sum(m["observed"] for m in info.values()), 1), 4),
        "bytes_read": int(sum(m["bytes_read"] for m in ran)),
        "block_cpu_s": round(sum(m["cpu_s"] for m in ran), 2),
        "worker_pids": sorted({m["pid"] for m in ran}),
    })
    return out
