"""A real ``dask.distributed`` cluster for tests: a scheduler and two worker processes
started as separate programs (not the in-process default), stopped after the session.

Import the fixture where it is needed (``from tests.dask_cluster import dask_scheduler``);
it yields the scheduler's address, for ``--scheduler`` of ``gapfill assemble`` and
``gapfill build-series``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def dask_scheduler(tmp_path_factory):
    """Address of a scheduler with two single-threaded worker processes."""
    folder = tmp_path_factory.mktemp("dask")
    sched_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    logs = open(folder / "cluster.log", "w")  # closed at teardown
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
        cwd=folder, env=env, stdout=logs, stderr=subprocess.STDOUT)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.fail(f"dask scheduler did not start: {(folder / 'cluster.log').read_text()}")
            time.sleep(0.2)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             str(sched_file), "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
             "--local-directory", str(folder / "workers"), "--memory-limit", "0"],
            cwd=folder, env=env, stdout=logs, stderr=subprocess.STDOUT))
        address = json.loads(sched_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        logs.close()
