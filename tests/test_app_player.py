"""The date player (app/player.py) without a browser: each tick is one validated day."""

from __future__ import annotations

import pandas as pd

from bench.serving import build_small_world


def test_player_steps_a_day_per_tick_and_stops_at_the_end(tmp_path, monkeypatch):
    from app.controller import Explorer
    from app.data import DataHub
    from app.player import DatePlayer

    world = build_small_world(tmp_path / "world.zarr")
    monkeypatch.setenv("GAPFILL_DEMO", str(world))
    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "cache"))
    hub = DataHub(readahead=0)
    app = Explorer(hub, query={"date": "2015-08-30"})
    player = DatePlayer(app=app)
    player._tick()
    assert app.state.day == pd.Timestamp("2015-08-31")
    assert app.maps.titles["raw"].startswith("Raw AMSR2 2015-08-31")
    player._cb = type("Stub", (), {"stop": lambda self: None})()  # as if playing
    player._tick()  # the record's last day: the player stops by itself
    assert app.state.day == pd.Timestamp("2015-08-31") and not player.playing
    assert player.button.label == "▶ play"
    hub.close()
