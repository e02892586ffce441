"""The satellites of the demo world and their errors: AMSR-E, AMSR2 and ASCAT.

Which sensor flies when (:func:`sensor_codes`, dates in :mod:`data_catalog.schema`):
AMSR-E on Aqua 2002-06-01 .. 2011-10-03 (its antenna stopped turning on 2011-10-04), no
AMSR sensor in the gap year, AMSR2 on GCOM-W from 2012-07-02 (launched 2012-05-18), and
ASCAT on Metop-A from 2007-01-01 (the start of the H SAF ASCAT soil moisture climate data
records; the H119 kit in ``../shared/data`` starts 2007-01-02).

An AMSR retrieval is the truth through the sensor's calibration plus an error::

    amsr = SM_REF + bias + gain * (truth - SM_REF) + bias_map
           + (1 + 0.5 * vegetation) * (persist * P + noise * eps)

with ``P`` a unit-variance field correlated over ``PERSIST_DEG`` and ``PERSIST_DAYS``
(:class:`RetrievalErrors`), ``eps`` white, clipped to 0..0.65 m3 m-3.  ASCAT is the
degree of saturation (percent) plus white noise, clipped to 0..100.  Where a value is
missing is decided by :mod:`.gaps`.

What each number imitates (the numbers sit with their comments below; none is fitted yet,
the figures named are what a v4 calibration should fit them to):

* **total random error** about 0.030 (AMSR-E) and 0.025 m3 m-3 (AMSR2), a quarter of its
  variance white (``noise``), the rest persistent (``persist``): of the order of the
  triple-collocation random errors of LPRM AMSR-E over the US Great Plains (cf. Dorigo et
  al. 2010, HESS 14, 2605-2616: a few hundredths m3 m-3); the demo gives AMSR2 a little
  less (its footprint is finer).  No single published figure is matched.
* **larger under vegetation** (factor ``1 + 0.5 x vegetation``): as LPRM's analytical
  error estimates grow with vegetation optical depth (Parinussa et al. 2011, IEEE GRSL 8,
  779-783); the factor is not fitted.
* **persistence** ``PERSIST_DEG`` 0.5 deg: the footprint of the C/X-band channels (AMSR-E
  6.9 GHz 75 x 43 km, 10.7 GHz 51 x 29 km; AMSR2 6.9 GHz 62 x 35 km, 10.7 GHz 42 x 24 km,
  JAXA); ``PERSIST_DAYS`` 20 days ("weeks", as vegetation optical depth and effective
  temperature errors last): no published figure.
* **bias, gain** (AMSR-E +0.03 and 1.10, AMSR2 -0.01 and 0.95 about ``SM_REF`` 0.25) and
  the **bias maps** (sd 0.012 and 0.010 m3 m-3 at 2 deg): an inter-sensor calibration
  difference of a few hundredths m3 m-3, the seam the transfer learning must bridge; no
  published figure.
* **orbits** (used by :mod:`.gaps` for swath gaps): ``ORBIT_SPACING_DEG`` 24.7 deg from
  the 98.8-minute period of Aqua and GCOM-W (the Earth turns 0.25 deg a minute);
  ``ORBITS_PER_DAY_FRAC`` 0.5625 from their 16-day repeat of 233 orbits (14.5625 a day).
  Both published.  ``SWATH_KM`` 1800 km is *wider* than the published swaths (1445 km
  AMSR-E, 1450 km AMSR2): a v4 candidate.  ``TRACK_TILT`` 0.2 deg of longitude per degree
  of latitude (a descending track of a sun-synchronous orbit) and the AMSR2 ``phase``
  0.37 are not fitted.
* **ASCAT noise** ``ASCAT_NOISE`` 5 % of saturation: the products' own noise estimate
  ``sm_noise`` is 5-7 % (10th-90th percentile) in the H SAF H108 kit in
  ``../shared/data``.  ``ASCAT_COVERAGE`` 0.62 of a day's longitude band: one Metop's two
  550 km swaths cover the globe in about 1.5 days; not fitted.

Random draws: two smooth fields (2 deg) from the shared ``"static"`` stream after those of
:mod:`.weather` (the bias maps); the ``"retrieval-persist"`` stream (``P``); per block,
``eps`` from the ``"amsr"`` stream after :mod:`.gaps` took its draws, and the ASCAT noise
from the ``"ascat"`` stream before :mod:`.gaps` takes its draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_catalog import schema
from data_catalog.demo.random_fields import LatentField, smooth_field

# Real sensor characteristics that the demo imitates (all tunable here, in one place).
# Retrieval error = a smooth static bias map + a persistent part (``persist``: spatially
# correlated over about a footprint, ~0.5 deg, and in time over ``PERSIST_DAYS``, like
# errors of the vegetation optical depth and effective temperature a retrieval carries
# for weeks) + independent day-to-day noise (``noise``), both larger under vegetation.
# Total random error ~0.025 (AMSR2) and ~0.03 m3 m-3 (AMSR-E), of which about a quarter of
# the variance is white.
AMSRE = {"bias": 0.03, "gain": 1.10, "noise": 0.015, "persist": 0.026, "phase": 0.0}
AMSR2 = {"bias": -0.01, "gain": 0.95, "noise": 0.012, "persist": 0.022, "phase": 0.37}
PERSIST_DAYS = 20.0         # e-folding time of the persistent retrieval error (days)
PERSIST_DEG = 0.5           # its spatial correlation length (deg): the footprint scale
SM_REF = 0.25               # gain acts about this reference soil moisture (m3 m-3)
ORBIT_SPACING_DEG = 24.7    # longitude between successive orbits (98.8 min at 0.25 deg/min)
ORBITS_PER_DAY_FRAC = 0.5625  # 14.5625 orbits a day: the 16-day, 233-orbit repeat
SWATH_KM = 1800.0           # effective daily swath of one descending overpass
TRACK_TILT = 0.2            # deg lon per deg lat of a descending ground track
ASCAT_NOISE = 5.0           # percent of saturation
ASCAT_COVERAGE = 0.62       # fraction of a day's longitude band seen by ASCAT

# the AMSR sensors with their schema code and characteristics
AMSR_SENSORS = ((schema.SENSOR_AMSRE, AMSRE), (schema.SENSOR_AMSR2, AMSR2))
AMSR_MAX = 0.65             # retrievals are clipped to 0..AMSR_MAX (m3 m-3)


def sensor_codes(time: pd.DatetimeIndex) -> np.ndarray:
    """The AMSR sensor of each day (schema codes: none in the gap year)."""
    s = np.zeros(len(time), dtype=np.int8)
    s[(time >= schema.AMSRE_START) & (time <= schema.AMSRE_END)] = schema.SENSOR_AMSRE
    s[time >= schema.AMSR2_START] = schema.SENSOR_AMSR2
    return s


class RetrievalErrors:
    """The static and persistent parts of the AMSR retrieval errors of one world.

    Draws the two bias maps from ``static`` (the shared ``"static"`` stream), in order.
    """

    def __init__(self, seed: int, static: np.random.Generator, vegetation: np.ndarray,
                 res: float):
        ny, nx = vegetation.shape
        cells = max(2.0 / res, 1.0)
        # per-sensor smooth bias patterns (calibration differences, m3 m-3)
        self.bias_maps = {schema.SENSOR_AMSRE: 0.012 * smooth_field(static, ny, nx, cells),
                          schema.SENSOR_AMSR2: 0.010 * smooth_field(static, ny, nx, cells)}
        self.veg_noise = 0.5 * vegetation
        self.persist = LatentField(seed, "retrieval-persist", ny, nx, res, PERSIST_DEG,
                                   float(np.exp(-1.0 / PERSIST_DAYS)), (0.0, 0.0), 0)


def amsr_retrieval(errors: RetrievalErrors, sensor: np.ndarray, truth: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """AMSR values (float64, m3 m-3; NaN on days without a sensor) for one block of days.

    ``sensor`` and ``truth`` cover the same consecutive days, which follow the previous
    block's (the persistent error carries on).  Draws the white noise from ``rng``.
    """
    t64 = truth.astype(np.float64)
    amsr = np.full(truth.shape, np.nan)
    eps = rng.standard_normal(truth.shape)
    persist = errors.persist.next(truth.shape[0])
    for code, sen in AMSR_SENSORS:
        d = sensor == code
        if d.any():
            amsr[d] = (SM_REF + sen["bias"] + sen["gain"] * (t64[d] - SM_REF)
                       + errors.bias_maps[code][None]
                       + (1 + errors.veg_noise[None])
                       * (sen["persist"] * persist[d] + sen["noise"] * eps[d]))
    return np.clip(amsr, 0.0, AMSR_MAX)


def ascat_retrieval(truth: np.ndarray, porosity: np.ndarray, residual: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """ASCAT values (float64, percent of saturation) for one block of days, gaps not yet
    applied.  Draws the noise from ``rng``."""
    t64 = truth.astype(np.float64)
    por = porosity[None].astype(np.float64)
    res = residual[None].astype(np.float64)
    ascat = 100.0 * (t64 - res) / (por - res) + ASCAT_NOISE * rng.standard_normal(truth.shape)
    return np.clip(ascat, 0.0, 100.0)
