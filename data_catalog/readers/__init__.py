"""Readers of the real soil-moisture formats, each returning the canonical schema form.

* :func:`read_lprm`, :func:`read_lprm_files` — NASA LPRM AMSR-E/AMSR2 L3 daily netCDF
* :func:`read_cci_image`, :func:`read_cci_images` — ESA CCI SM / C3S daily images
* :func:`read_cell_series`, :func:`grid_points_in_bbox` — CCI/C3S/QA4SM orthogonal and
  H SAF ASCAT ragged time-series cell files (point DataFrame)
* :func:`read_ismn`, :func:`daily_mean` — ISMN downloads (stations ``(table, series)``)
"""

from __future__ import annotations

from data_catalog.readers.cci_images import read_cci_image, read_cci_images
from data_catalog.readers.cells import grid_points_in_bbox, read_cell_series
from data_catalog.readers.ismn import daily_mean, read_ismn
from data_catalog.readers.lprm import read_lprm, read_lprm_files

__all__ = ["daily_mean", "grid_points_in_bbox", "read_cci_image", "read_cci_images",
           "read_cell_series", "read_ismn", "read_lprm", "read_lprm_files"]
