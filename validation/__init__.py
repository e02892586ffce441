"""Station validation: collocate stations with satellite cells, then compute metrics.

``validation.metrics`` (pure ``metric(x, y) -> float`` functions and
``compute_metrics``), ``validation.collocation`` (space, depth, time),
``validation.compare`` (per-station comparisons and the network table),
``validation.report`` (CSV, markdown, figures) and ``validation.cli``
(``gapfill validate``).  Nothing here imports Panel, Bokeh, HoloViews or (at import
time) torch.
"""
