"""One day of one product on the world's grid, with its gap categories.

The readers (:mod:`data_catalog.readers`) do the product's own conventions (units, flags,
orientation, the gap categories from what the file records); this module only cuts the
day to the world's cells and checks that the file is on the same grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_catalog import schema
from data_catalog.errors import FormatError

#: CCI/C3S sensor bits kept for each role: the world's radiometer is AMSR-E/AMSR2, its
#: scatterometer ASCAT (ERS AMI-WS days of ACTIVE products are left out)
AMSR_SENSORS = ("AMSRE", "AMSR2")
ASCAT_SENSORS = ("ASCATA", "ASCATB", "ASCATC")


def box(plan) -> tuple[float, float, float, float]:
    """A box that holds exactly the world's cell centres (the readers' ``region``)."""
    eps = 0.01
    return (max(plan.lon[0] - eps, -180.0), max(plan.lat[0] - eps, -90.0),
            min(plan.lon[-1] + eps, 180.0), min(plan.lat[-1] + eps, 90.0))


def _on_grid(ds, plan, path: str, day: str) -> None:
    lat, lon = ds[schema.LAT].values, ds[schema.LON].values
    if lat.size != plan.lat.size or lon.size != plan.lon.size \
            or not np.allclose(lat, plan.lat, atol=1e-4) \
            or not np.allclose(lon, plan.lon, atol=1e-4):
        raise FormatError("its grid differs from the world's 0.25 degree cells (mixed grids: "
                          "every file of a source must share one grid)", path)
    t = pd.Timestamp(ds[schema.TIME].values[0]).strftime("%Y-%m-%d")
    if t != day:
        raise FormatError(f"the file name says {day}, its time variable {t}", path)


def read_amsr_day(product, path: str, day: str, plan
                  ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    """``amsr_sm`` (m3 m-3, NaN where not observed), ``gap_mask``, the radiometer and
    ``amsr_sm_error`` (m3 m-3, NaN where not observed; None when the file has none)."""
    from data_catalog.readers import read_cci_image, read_lprm

    if product.kind == "lprm":
        ds = read_lprm(path, band=product.options.get("band", "c1"), region=box(plan),
                       require_data=False)
    else:
        ds = read_cci_image(path, region=box(plan), sensors=AMSR_SENSORS, require_data=False)
    _on_grid(ds, plan, path, day)
    sm = ds[schema.AMSR_SM].values[0].astype(np.float32)
    gap = ds[schema.GAP_MASK].values[0].astype(np.int8)
    sm[gap != schema.OBSERVED] = np.nan
    err = None
    if schema.AMSR_SM_ERROR in ds:
        err = ds[schema.AMSR_SM_ERROR].values[0].astype(np.float32)
        err[~np.isfinite(sm)] = np.nan
    return sm, gap, int(ds[schema.SENSOR].values[0]), err


def read_ascat_day(product, path: str, day: str, plan) -> np.ndarray:
    """``ascat_sm`` (percent of saturation, NaN where missing or flagged)."""
    from data_catalog.readers import read_cci_image

    ds = read_cci_image(path, region=box(plan), sensors=ASCAT_SENSORS, require_data=False)
    _on_grid(ds, plan, path, day)
    sm = ds[schema.ASCAT_SM].values[0].astype(np.float32)
    sm[ds[schema.GAP_MASK].values[0] != schema.OBSERVED] = np.nan
    return sm
