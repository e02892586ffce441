"""Station validation: collocate stations with satellite cells, then compute metrics.

* :mod:`validation.metrics`: pure ``metric(x, y) -> float`` functions (R with p-value and
  Fisher-z interval, Spearman rho, RMSE, ubRMSE, bias, anomaly R, bootstrap intervals),
  the one registry :data:`~validation.metrics.METRICS` every table reads, and
  ``compute_metrics`` with a status; :mod:`validation.scaling`: mean/std, CDF matching;
* :mod:`validation.collocation`: space (nearest cell, distance), depth (surface sensors)
  and time (ISMN flag G, hourly values around the overpasses in local solar time, UTC);
* :mod:`validation.protocol`: the settings, a compared series and what a source gives;
* :mod:`validation.compare`: per-station aligned series and metric rows, the network
  table; :mod:`validation.summary`: medians and the relative change of the median R from
  raw to filled, JSON rows;
* :mod:`validation.sources`: the demo world (raw, filled, filled on gap days, ASCAT,
  truth); :mod:`validation.kits`: real-data kits through the catalog (roles and units
  from its metadata); :mod:`validation.filled`: the filled series from a series store or
  the model package;
* :mod:`validation.report`: CSV, markdown, JSON and figures;
  :mod:`validation.cli`: ``gapfill validate``.

Nothing here imports Panel, Bokeh, HoloViews or torch: the model runs in the model
package (:func:`model.points.filled_at_points`), which validation asks for a filled series.
"""
