"""Station validation: collocate stations with satellite cells, then compute metrics.

* :mod:`validation.metrics`: pure ``metric(x, y) -> float`` functions (R with p-value and
  Fisher-z interval, Spearman rho, RMSE, ubRMSE, bias, anomaly R, bootstrap intervals),
  scaling (mean/std, CDF matching) and ``compute_metrics`` with a status;
* :mod:`validation.collocation`: space (nearest cell, distance), depth (surface sensors)
  and time (ISMN flag G, hourly values around the overpasses in local solar time, UTC);
* :mod:`validation.compare`: per-station aligned series and metric rows, the network
  table, medians and the relative change of the median R from raw to filled;
* :mod:`validation.sources`: the demo world (raw, filled, filled on gap days, ASCAT,
  truth) and real-data kits; :mod:`validation.kits`: kits through the catalog;
* :mod:`validation.report`: CSV, markdown, JSON and figures;
  :mod:`validation.cli`: ``gapfill validate``.

Nothing here imports Panel, Bokeh or HoloViews, nor torch at import time (only the
function that streams the model imports it).
"""
