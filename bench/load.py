"""Concurrent sessions stepping through dates (``python -m bench.load --json``).

Starts ``panel serve app`` on 127.0.0.1 (a small synthetic world and a stand-in checkpoint,
days pre-filled in the inference cache), then opens N pages in one headless chromium
(playwright, asyncio), one after the other.  Then all of them step together for the given
duration: each page clicks *next day* and waits until all four map titles show the new day
and a frame is painted (as ``bench.app`` does); at the end of the pre-filled days it steps
back with *previous day*, then forward again.  Pages are not reloaded while they step: ten
pages reopening at the same moment measure session creation (about 2 s of server time
each, queued one after the other), not date changes.  Server, browser and the benchmark
share the machine's cores.  Reported: errors
(server refusals, timeouts, exceptions), median and 95th percentile latency of a date
change, and the server's resident memory before (after one warm-up session, closed), at
its peak during the run, and after all sessions have closed and the server has discarded
them.  Target: 0 errors; memory after within 10% of before.

The server runs as ``make serve`` runs it (``app.memory.SERVE_ENV``: ``PYTHONMALLOC=malloc``,
reported as ``server_env``); the app collects a closed session's cycles and trims the C
heap a few seconds after the last page closed (``memory_release_pauses_s``: the longest
pause of the server in each such release).

"Before" is measured after a warm-up session (``WARMUP_SESSIONS``, ``WARMUP_S``, reported
in the JSON with ``rss_mb_start``, the memory before it) that steps through the days of the
run, so one-time imports and the hub's bounded day cache are not counted as a leak.

JSON: ``{"sessions", "errors", "p50_s", "p95_s", "rss_mb_before", "rss_mb_peak",
"rss_mb_after", ...}``.

``--quick`` runs the same steps with 2 sessions for 5 s in one round, on a 16 x 16 cell
world with 8 pre-filled days, short warm-up and settling pauses and closed sessions
discarded after 1.5 s, to check that the
benchmark still runs (a test does); its figures say nothing about the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from app.memory import SERVE_ENV
from bench.serving import free_port, prepare_workdir, serve, stop

log = logging.getLogger("bench.load")

WORLD = dict(west=-100.0, south=30.0, east=-84.0, north=46.0, start="2015-05-01",
             end="2015-08-31", n_stations=24, seed=42)
START = "2015-06-01"
N_DAYS = 40
#: --quick: a small world, few days, short pauses (the rest as given on the command line)
QUICK = dict(world=dict(west=-100.0, south=30.0, east=-96.0, north=34.0, start="2015-05-25",
                        end="2015-06-15", n_stations=4, seed=42),
             n_days=8, sessions=2, duration=5.0, rounds=1, warmup_s=5.0, settle_s=3.0,
             unused_ms=(500, 1500))


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


async def run_page(browser, url: str, k: int, duration: float, out: dict,
                   start_evt: asyncio.Event, ready: set, n_days: int = N_DAYS) -> None:
    """One browser page: step dates for ``duration`` seconds through ``n_days`` days,
    record latencies."""
    from bench.app import STEP_JS, WAIT_JS

    lat: list[float] = []
    errors: list[str] = []
    page = None
    try:
        # pages are opened one after the other (opening ten at once on two shared cores
        # measures chromium's start-up, not the app); then all of them step together
        while len([j for j in ready if j < k]) < k:
            await asyncio.sleep(0.2)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        await page.goto(f"{url}?date={START}", timeout=180_000)
        await page.wait_for_function(f"({WAIT_JS})() === 4", timeout=180_000)
        ready.add(k)
        await start_evt.wait()
        t_end = time.perf_counter() + duration
        first, last = pd.Timestamp(START), pd.Timestamp(START) + pd.Timedelta(days=n_days - 1)
        day, step = first, 1
        while time.perf_counter() < t_end:
            if not first <= day + pd.Timedelta(days=step) <= last:
                step = -step  # turn round at either end of the pre-filled days
            day += pd.Timedelta(days=step)
            label = "next day" if step > 0 else "previous day"
            r = await page.evaluate(STEP_JS, [f"{day:%Y-%m-%d}", label])
            if "error" in r:
                errors.append(f"{day:%Y-%m-%d}: {r['error']}")
                # start again from a known state: the page at the first day
                await page.goto(f"{url}?date={START}", timeout=180_000)
                await page.wait_for_function(f"({WAIT_JS})() === 4", timeout=180_000)
                day, step = first, 1
            else:
                lat.append(float(r["seconds"]))
    except Exception as exc:  # noqa: BLE001 - every failure is counted as an error
        errors.append(f"{type(exc).__name__}: {exc}")
        ready.add(k)  # do not hold up the pages after this one
    finally:
        if page is not None:
            await page.close()
        out[k] = {"latencies": lat, "errors": errors}


async def run_all(url: str, n: int, duration: float, pid: int, n_days: int = N_DAYS
                  ) -> tuple[dict, float]:
    from playwright.async_api import async_playwright

    from bench.app import CHROMIUM_ARGS

    out: dict = {}
    peak = 0.0
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                          args=CHROMIUM_ARGS)
        start = asyncio.Event()
        ready: set = set()
        tasks = [asyncio.create_task(run_page(browser, url, k, duration, out, start, ready,
                                              n_days))
                 for k in range(n)]
        # start stepping when every page shows its maps (or has failed)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 600:
            peak = max(peak, rss_mb(pid))
            if all(t.done() or k in ready for k, t in enumerate(tasks)):
                break
            await asyncio.sleep(0.5)
        start.set()
        while not all(t.done() for t in tasks):
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.5)
        await browser.close()
    return out, peak


#: the warm-up: one session stepping long enough to pass every day of the run once (at
#: 0.1-0.5 s a step), so that "before" includes the server's one-time costs (imports, the
#: data hub's bounded cache of these days, coastlines) and "after - before" is what the
#: sessions themselves leave behind
WARMUP_SESSIONS = 1
WARMUP_S = 25.0
#: seconds from the last page closing to reading the memory: the server discards an unused
#: session within 7 s (checked every 2 s, 5 s lifetime, as passed below), and the app
#: releases the memory of closed sessions 3 s after the last one closed (app/memory.py)
SETTLE_S = 20.0


def releases(server_log: Path) -> list[float]:
    """The longest pause (s) of each of the app's memory releases (from the server log)."""
    out = []
    for line in server_log.read_text(errors="replace").splitlines():
        m = re.search(r"released closed sessions: .* longest pause ([0-9.]+) s", line)
        if m:
            out.append(float(m.group(1)))
    return out


def warmup(url: str, pid: int, seconds: float = WARMUP_S, n_days: int = N_DAYS) -> int:
    """Run the warm-up session; returns its number of date changes."""
    out, _ = asyncio.run(run_all(url, WARMUP_SESSIONS, seconds, pid, n_days))
    errs = [e for r in out.values() for e in r["errors"]]
    if errs:
        raise RuntimeError(f"warm-up session failed: {errs}")
    return sum(len(r["latencies"]) for r in out.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON only")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of stepping")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of N sessions (memory after each: growth vs plateau)")
    ap.add_argument("--quick", action="store_true",
                    help="a small world, 2 sessions for 5 s, short pauses: checks that it runs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    spec, n_days, warmup_s, settle_s = WORLD, N_DAYS, WARMUP_S, SETTLE_S
    check_ms, lifetime_ms = 2000, 5000
    if args.quick:
        spec, n_days, warmup_s, settle_s = (QUICK["world"], QUICK["n_days"],
                                            QUICK["warmup_s"], QUICK["settle_s"])
        args.sessions, args.duration, args.rounds = (QUICK["sessions"], QUICK["duration"],
                                                     QUICK["rounds"])
        check_ms, lifetime_ms = QUICK["unused_ms"]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-load-"))
    world, ckpts, cache = prepare_workdir(work, spec)
    from bench.app import fill_cache

    fill_cache(world, ckpts, cache, (spec["west"], spec["south"], spec["east"],
                                     spec["north"]),
               pd.date_range(START, periods=n_days))
    port = free_port()
    env = {"GAPFILL_DEMO": str(world), "GAPFILL_CHECKPOINTS": str(ckpts),
           "GAPFILL_CACHE": str(cache)}
    # discard closed sessions quickly so "after" measures a server without sessions
    proc = serve(env, port, work / "server.log",
                 # discard closed sessions quickly, so memory after the rounds is comparable
                 extra_args=("--check-unused-sessions", str(check_ms),
                             "--unused-session-lifetime", str(lifetime_ms)))
    url = f"http://127.0.0.1:{port}/app"
    try:
        start_rss = rss_mb(proc.pid)  # the server has answered one page request, no more
        warm_changes = warmup(url, proc.pid, warmup_s, n_days)
        time.sleep(settle_s)  # the warm-up session is discarded and its memory released
        before = rss_mb(proc.pid)
        peak, afters, out = before, [], {}
        for _ in range(args.rounds):
            got, p = asyncio.run(run_all(url, args.sessions, args.duration, proc.pid, n_days))
            out.update({(len(afters), k): v for k, v in got.items()})
            peak = max(peak, p)
            time.sleep(settle_s)  # closed sessions are discarded, their memory released
            afters.append(rss_mb(proc.pid))
        after = afters[-1]
    finally:
        stop(proc)
    lat = [x for r in out.values() for x in r["latencies"]]
    errs = [e for r in out.values() for e in r["errors"]]
    res = {
        "sessions": args.sessions,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "date_changes": len(lat),
        "errors": len(errs),
        "p50_s": round(float(np.percentile(lat, 50)), 4) if lat else None,
        "p95_s": round(float(np.percentile(lat, 95)), 4) if lat else None,
        "warmup_sessions": WARMUP_SESSIONS,
        "warmup_s": warmup_s,
        "warmup_date_changes": warm_changes,
        "rss_mb_start": round(start_rss, 1),
        "rss_mb_before": round(before, 1),
        "rss_mb_peak": round(peak, 1),
        "rss_mb_after": round(after, 1),
        "rss_after_vs_before": round(after / before, 3),
        "rss_mb_after_each_round": [round(a, 1) for a in afters],
        "memory_release_pauses_s": releases(work / "server.log"),
        "server_env": dict(SERVE_ENV),
        "error_samples": errs[:5],
        "client": "headless chromium pages in one browser (playwright), clicking next day"
                  " and previous day",
        "quick": args.quick,
    }
    print(json.dumps(res) if args.json else json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
