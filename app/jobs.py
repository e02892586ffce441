"""Waiting for a job of the hub's worker on the server's event loop (no Panel).

Inference of a day and the fill of a period run in :class:`app.data.DataHub`'s worker
thread; the session awaits them here, showing the progress the worker leaves behind, and
turns a failure into one notification and one status line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from data_catalog.errors import GapfillError

log = logging.getLogger(__name__)

#: how often the progress is shown while a job runs (seconds)
TICK_S = 0.25


class Progress:
    """The worker's progress (``frac`` 0..1 and a message), written by the worker thread
    through the object itself as a callback and read on the event loop."""

    def __init__(self) -> None:
        self.frac, self.msg = 0.0, "queued"

    def __call__(self, frac: float, msg: str = "") -> None:  # called in the worker thread
        self.frac, self.msg = float(frac), msg


async def await_job(fut: Future, progress: Progress,
                    tick: Callable[[float, str], None]) -> Any:
    """The result of the worker's future ``fut`` (its exception raised here); until it is
    done, ``tick(frac, msg)`` every :data:`TICK_S` seconds with the worker's progress."""
    wrapped = asyncio.wrap_future(fut)
    while not wrapped.done():
        await asyncio.wait({wrapped}, timeout=TICK_S)
        tick(progress.frac, progress.msg)
    return wrapped.result()


async def run(what: str, submit: Callable[[], Future], progress: Progress,
              tick: Callable[[float, str], None], *, notify: Callable[[str, str], None],
              status: Callable[[str], None], done: Callable[[], None],
              passthrough: tuple[type[BaseException], ...] = ()) -> Any | None:
    """Run the worker job ``what`` ("Inference"): ``submit()`` starts it and gives its
    future, ``tick`` shows its progress while it runs (see :func:`await_job`).

    Returns its result, or None when it failed: then one notification (``notify(note,
    "error")``) and the status line (``status(line)``) say why (:func:`failure`).
    Exceptions of ``passthrough`` (a cancelled job) are raised to the caller.  ``done()``
    is called in every case (the caller's "running" flag goes down).
    """
    try:
        return await await_job(submit(), progress, tick)
    except passthrough:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing job must not break the app
        note, line = failure(what, exc)
        notify(note, "error")
        status(line)
        return None
    finally:
        done()


def failure(what: str, exc: BaseException) -> tuple[str, str]:
    """The notification and the status line of a failed job ``what`` ("Inference").

    A :class:`GapfillError` is the user's one line; anything else is a bug of ours,
    logged with its traceback (call this inside the ``except`` block)."""
    if isinstance(exc, GapfillError):
        return f"{what} failed: {exc}", f"{what.lower()} failed: {exc}"
    log.exception("%s failed", what.lower())
    name = type(exc).__name__
    return f"{what} failed: {name}: {exc}", f"{what.lower()} failed ({name})"
