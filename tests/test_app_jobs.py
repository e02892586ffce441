"""Waiting for the hub's worker (app/jobs.py): progress shown while it runs, failures as
one notification and one status line (no browser)."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app import jobs
from data_catalog.errors import MissingFileError


def test_await_job_shows_the_workers_progress_and_returns_its_result():
    progress = jobs.Progress()
    go_on = threading.Event()
    seen: list[tuple[float, str]] = []

    def work():
        progress(0.5, "half")
        go_on.wait(10)
        return 42

    def tick(frac, msg):
        seen.append((frac, msg))
        if msg == "half":
            go_on.set()

    with ThreadPoolExecutor(1) as pool:
        result = asyncio.run(jobs.await_job(pool.submit(work), progress, tick))
    assert result == 42
    assert (0.5, "half") in seen


def test_await_job_raises_the_workers_exception():
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            asyncio.run(jobs.await_job(fut, jobs.Progress(), lambda f, m: None))


def test_a_users_mistake_is_one_line_and_a_bug_is_logged(caplog):
    note, status = jobs.failure("Inference", MissingFileError("gone", "/x/y.zarr"))
    assert note.startswith("Inference failed: ") and "gone" in note
    assert status.startswith("inference failed: ")
    assert not caplog.records
    with caplog.at_level(logging.ERROR, logger="app.jobs"):
        try:
            raise KeyError("k")
        except KeyError as exc:
            note, status = jobs.failure("Period fill", exc)
    assert note == "Period fill failed: KeyError: 'k'"
    assert status == "period fill failed (KeyError)"
    assert caplog.records and caplog.records[0].exc_info is not None


class _Cancelled(Exception):
    pass


def _run(work, passthrough=()):
    """jobs.run on a one-thread pool; what it told the notification, status and done."""
    told = {"notes": [], "status": [], "done": 0}

    def done():
        told["done"] += 1

    with ThreadPoolExecutor(1) as pool:
        out = asyncio.run(jobs.run(
            "Period fill", lambda: pool.submit(work), jobs.Progress(), lambda f, m: None,
            notify=lambda note, level: told["notes"].append((level, note)),
            status=told["status"].append, done=done, passthrough=passthrough))
    return out, told


def test_run_returns_the_result_and_always_calls_done():
    out, told = _run(lambda: (1, 2))
    assert out == (1, 2)
    assert told == {"notes": [], "status": [], "done": 1}


def test_run_turns_a_failure_into_one_note_and_a_status_line():
    out, told = _run(lambda: (_ for _ in ()).throw(MissingFileError("gone", "/x.zarr")))
    assert out is None
    assert len(told["notes"]) == 1 and told["notes"][0][0] == "error"
    assert "gone" in told["notes"][0][1]
    assert told["status"] and told["status"][0].startswith("period fill failed")
    assert told["done"] == 1


def test_run_raises_a_passthrough_exception_after_done():
    def work():
        raise _Cancelled("stopped")

    done = []
    with ThreadPoolExecutor(1) as pool, pytest.raises(_Cancelled):
        asyncio.run(jobs.run("Period fill", lambda: pool.submit(work), jobs.Progress(),
                             lambda f, m: None, notify=lambda n, lv: None,
                             status=lambda line: None, done=lambda: done.append(1),
                             passthrough=(_Cancelled,)))
    assert done == [1]
