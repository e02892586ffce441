"""The satellites of the demo world and their errors: AMSR-E, AMSR2 and ASCAT.

Which sensor flies when (:func:`sensor_codes`, dates in :mod:`data_catalog.schema`):
AMSR-E on Aqua 2002-06-01 .. 2011-10-03 (its antenna stopped turning on 2011-10-04), no
AMSR sensor in the gap year, AMSR2 on GCOM-W from 2012-07-02 (launched 2012-05-18), and
ASCAT on Metop-A from 2007-01-01 (the start of the H SAF ASCAT soil moisture climate data
records; the H119 kit in ``../shared/data`` starts 2007-01-02).

Generator version 4 calibrates the errors to published validation figures (the table
below; ``data_catalog/README.md`` has it too).  ``tau`` is the day's C-band vegetation
optical depth (:func:`.land.optical_depth`), ``doy`` the day of year.

An AMSR retrieval (m3 m-3, clipped to 0..0.65) is the truth through the sensor's
calibration, whose sensitivity sags when the vegetation peaks, plus an error amplified by
the canopy::

    amsr = SM_REF + bias + gain * season * (truth - SM_REF) + bias_map
           + (persist * P + noise * eps) / gamma(tau, 55 deg)
    season = 1 - SENS_SEASON * vegetation * cos(2 pi (doy - 200) / 365.25)
    gamma(tau, theta) = exp(-tau / cos(theta))      (one-way canopy transmissivity)

with ``P`` a unit-variance field correlated over ``PERSIST_DEG`` and ``PERSIST_DAYS``
and ``eps`` white.  An ASCAT retrieval (percent of saturation, clipped to 0..100) is the
degree of saturation plus an error divided by ASCAT's sensitivity::

    ascat = 100 (truth - residual) / (porosity - residual)
            + (ASCAT_NOISE eps + ASCAT_PERSIST Q + season_error) / sensitivity
    sensitivity = gamma(tau, 40 deg) * (1 - DRY_LOSS * aridity)
    season_error = ASCAT_SEASON * (mean tau / 0.5) * s(x) * cos(2 pi (doy - 200) / 365.25)

with ``Q`` a unit-variance field correlated over ``ASCAT_PERSIST_DEG`` and
``ASCAT_PERSIST_DAYS``, ``s(x)`` a unit-variance map at 1 deg (the vegetation correction
over- or under-corrects, by land cover), and ``aridity`` 1 where the annual rain of
:mod:`.weather` is at most 500 mm, 0 from 800 mm.  Where a value is missing is decided
by :mod:`.gaps`.

Calibration.  The laws (canopy amplification, seasonal sensitivity, dry-soil loss), the
persistence and ASCAT's white noise (from the H SAF kits' ``sm_noise``) were set first and
not adjusted.  Then AMSR's ``noise`` and ``persist`` were scaled together (keeping v3's
white share) and ``ASCAT_PERSIST`` chosen (7, then 8 %) on a 2010-2015 world so that the
demo's stations see the in situ R of Kim et al. (2018) and ASCAT's anomalies the R of
Chen et al. (2018).  Measured with ``python -m data_catalog.demo.stats`` on the default world
(64 x 64 cells, 2003-2023; R is the median over land pixels of the temporal Pearson R on
the sensor's observed days; "thirds" are the sparsest and densest third of the land cells
by vegetation; "verified" means the figure was read in the source's abstract here, "not
verified" that it could not be checked and only the qualitative finding is used):

=============================  ==============  ===================  ==========================
demo statistic                 demo v4         published            source
=============================  ==============  ===================  ==========================
AMSR (E and 2) R against in    0.63 (22        0.65 (AMSR2, mean    Kim et al. 2018, RSE 204,
situ, raw daily, median of     stations)       over in situ         260-275 (verified)
stations                                       networks)
AMSR ubRMSD against in situ    0.061 m3 m-3    0.0708 m3 m-3        Kim et al. 2018 (verified)
ASCAT R against in situ        0.59 (24)       0.64                 Kim et al. 2018 (verified)
ASCAT ubRMSD against in situ   0.062 m3 m-3    0.0625 m3 m-3        Kim et al. 2018 (verified)
ASCAT R against the truth,     0.65            0.63 (global mean    Chen et al. 2018, RSE 214,
anomalies                                      by TC; SMAP 0.76,    1-13 (verified)
                                               SMOS 0.66)
AMSR-E / AMSR2 / ASCAT R       0.71 / 0.65 /   roughly 0.6-0.8 by   Dorigo et al. 2010, HESS
against the truth, raw         0.66            TC                   14; Gruber et al. 2016,
(anomalies)                    (0.69 / 0.63 /                       JAG 45 (not verified)
                               0.65)
error sd scaled to the truth   0.052 / 0.061   a few hundredths     Dorigo et al. 2010 (not
(TC's error sd), E / 2 /       / 0.061 m3 m-3  m3 m-3, larger       verified)
ASCAT                                          under vegetation
R sparsest / densest third,    0.79 / 0.55,    errors grow with     Dorigo et al. 2010;
AMSR-E, AMSR2, ASCAT           0.74 / 0.49,    vegetation density   Parinussa et al. 2011,
                               0.74 / 0.43     (both kinds)         GRSL 8 (not verified)
seasonal sensitivity swing     +-20 % at index up to 40 % seasonal  Zwieback et al. 2018,
of the radiometer              1 (+-7 % at the sensitivity change   HESS 22, 4473 (verified;
                               median 0.34)    (SMAP, croplands)    SMAP, not AMSR)
ASCAT white noise, p10 / p50   5.4 / 6.7 /     ``sm_noise`` 5 / 6 / H SAF H108 (70 N) and
/ p90 over land and the year   12.3 %          7 % and 5.9 / 8.4 /  H119 (Hawaii) kits in
                                               10.3 %               ``../shared/data``
ASCAT weaker in dry, sparse    30 % less       weaker; no figure    Wagner et al. 2013,
regions                        sensitivity at                       Meteorol. Z. 22 (not
                               <= 500 mm/yr                         verified)
ASCAT seasonal vegetation-     8 % x tau/0.5   seasonal over- and   Vreugdenhil et al. 2016,
correction error (amplitude)   (median 3.7 %,  underestimation      TGRS; 2018, Remote Sens.
                               p90 12 %)                            10, 1788 (2018 verified)
error persistence (e-folding)  20 days, both   strongly auto-       Crow and van den Berg
and white share of the random  sensors; white  correlated, no       2010, WRR 46, W12519;
error variance                 24 % (AMSR),    e-folding time       Dong et al. 2018, GRL 45
                               20 % (ASCAT)    found                (verified, qualitative)
=============================  ==============  ===================  ==========================

Not imitated: the error cross-correlation between ASCAT and AMSR-E that extended
collocation finds (Gruber et al. 2016, JGR 121; verified, qualitative): the demo's ASCAT
and AMSR errors are independent.  The persistence of 20 days and the 0.5 deg footprint
scale are v3's, kept unchanged (no published e-folding time could be checked; the
footprints of the C/X-band channels are AMSR-E 6.9 GHz 75 x 43 km, 10.7 GHz 51 x 29 km;
AMSR2 62 x 35 km and 42 x 24 km, JAXA); ASCAT's 0.25 deg is its ~25 km resolution.
``AMSR_INCIDENCE_DEG`` 55 deg (AMSR-E and AMSR2) and ``ASCAT_INCIDENCE_DEG`` 40 deg (the
reference angle of the TU Wien retrieval) are published; the one-way transmissivity for
ASCAT (its change detection re-normalises the dry and wet references, recovering part of
the two-way loss) is a model choice.

Other numbers:

* **bias, gain** (AMSR-E +0.03 and 1.10, AMSR2 -0.01 and 0.95 about ``SM_REF`` 0.25) and
  the **bias maps** (sd 0.012 and 0.010 m3 m-3 at 2 deg): an inter-sensor calibration
  difference of a few hundredths m3 m-3, the seam the transfer learning must bridge; no
  published figure.  AMSR-E's larger gain is why its R is higher than AMSR2's with the
  same error amplitudes.
* **orbits** (used by :mod:`.gaps` for swath gaps): ``ORBIT_SPACING_DEG`` 24.7 deg from
  the 98.8-minute period of Aqua and GCOM-W (the Earth turns 0.25 deg a minute);
  ``ORBITS_PER_DAY_FRAC`` 0.5625 from their 16-day repeat of 233 orbits (14.5625 a day).
  Both published.  ``SWATH_KM`` 1800 km is *wider* than the published swaths (1445 km
  AMSR-E, 1450 km AMSR2): left for a later version (it changes the gaps).
  ``TRACK_TILT`` 0.2 deg of longitude per degree of latitude (a descending track of a
  sun-synchronous orbit) and the AMSR2 ``phase`` 0.37 are not fitted.
* ``ASCAT_COVERAGE`` 0.62 of a day's longitude band: one Metop's two 550 km swaths cover
  the globe in about 1.5 days; not fitted.

Random draws: from the shared ``"static"`` stream after those of :mod:`.weather`, two
smooth fields (2 deg, the bias maps) and one (1 deg, ASCAT's seasonal-error sign ``s``);
the ``"retrieval-persist"`` (``P``) and ``"ascat-persist"`` (``Q``) streams; per block,
``eps`` from the ``"amsr"`` stream after :mod:`.gaps` took its draws, and the ASCAT noise
from the ``"ascat"`` stream before :mod:`.gaps` takes its draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import data_catalog.demo.land as land
from data_catalog import schema
from data_catalog.demo.random_fields import LatentField, smooth_field

# ---- AMSR-E and AMSR2 (m3 m-3; see the module docstring for what each number imitates)
# noise: white day-to-day error; persist: the persistent error (P); both at zero optical
# depth, divided by the canopy transmissivity of the day
AMSRE = {"bias": 0.03, "gain": 1.10, "noise": 0.014, "persist": 0.025, "phase": 0.0}
AMSR2 = {"bias": -0.01, "gain": 0.95, "noise": 0.014, "persist": 0.025, "phase": 0.37}
AMSR_INCIDENCE_DEG = 55.0   # earth incidence angle of AMSR-E and AMSR2
SENS_SEASON = 0.20          # seasonal loss of sensitivity at vegetation index 1 (+-)
PERSIST_DAYS = 20.0         # e-folding time of the persistent retrieval error (days)
PERSIST_DEG = 0.5           # its spatial correlation length (deg): the footprint scale
SM_REF = 0.25               # gain acts about this reference soil moisture (m3 m-3)
ORBIT_SPACING_DEG = 24.7    # longitude between successive orbits (98.8 min at 0.25 deg/min)
ORBITS_PER_DAY_FRAC = 0.5625  # 14.5625 orbits a day: the 16-day, 233-orbit repeat
SWATH_KM = 1800.0           # effective daily swath of one descending overpass
TRACK_TILT = 0.2            # deg lon per deg lat of a descending ground track
# ---- ASCAT (percent of saturation, at full sensitivity; divided by the day's sensitivity)
ASCAT_NOISE = 4.0           # white noise
ASCAT_PERSIST = 8.0         # persistent error (Q), e-folding ASCAT_PERSIST_DAYS
ASCAT_SEASON = 8.0          # seasonal vegetation-correction error at optical depth 0.5
ASCAT_PERSIST_DAYS = PERSIST_DAYS
ASCAT_PERSIST_DEG = 0.25    # ASCAT's ~25 km resolution
ASCAT_INCIDENCE_DEG = 40.0  # the reference incidence angle of the TU Wien retrieval
DRY_LOSS = 0.3              # sensitivity lost to volume scattering in the driest cells
DRY_RAIN_MM = (500.0, 800.0)  # annual rain with the full / no dry-soil loss
ASCAT_COVERAGE = 0.62       # fraction of a day's longitude band seen by ASCAT

# the AMSR sensors with their schema code and characteristics
AMSR_SENSORS = ((schema.SENSOR_AMSRE, AMSRE), (schema.SENSOR_AMSR2, AMSR2))
AMSR_MAX = 0.65             # retrievals are clipped to 0..AMSR_MAX (m3 m-3)
ASCAT_PARAMETERS = {"noise": ASCAT_NOISE, "persist": ASCAT_PERSIST, "season": ASCAT_SEASON,
                    "persist_days": ASCAT_PERSIST_DAYS, "dry_loss": DRY_LOSS}


def sensor_codes(time: pd.DatetimeIndex) -> np.ndarray:
    """The AMSR sensor of each day (schema codes: none in the gap year)."""
    s = np.zeros(len(time), dtype=np.int8)
    s[(time >= schema.AMSRE_START) & (time <= schema.AMSRE_END)] = schema.SENSOR_AMSRE
    s[time >= schema.AMSR2_START] = schema.SENSOR_AMSR2
    return s


def transmissivity(tau: np.ndarray, incidence_deg: float) -> np.ndarray:
    """One-way canopy transmissivity ``exp(-tau / cos(incidence))``."""
    return np.exp(-tau / np.cos(np.radians(incidence_deg)))


class RetrievalErrors:
    """The static and persistent parts of the retrieval errors of one world.

    Draws from ``static`` (the shared ``"static"`` stream), in order: the two AMSR bias
    maps and the sign map of ASCAT's seasonal vegetation-correction error.
    ``p_ann`` is the annual rain (mm) of :mod:`.weather` (ASCAT's dry-soil loss).
    """

    def __init__(self, seed: int, static: np.random.Generator, vegetation: np.ndarray,
                 p_ann: np.ndarray, res: float):
        ny, nx = vegetation.shape
        cells = max(2.0 / res, 1.0)
        # per-sensor smooth bias patterns (calibration differences, m3 m-3)
        self.bias_maps = {schema.SENSOR_AMSRE: 0.012 * smooth_field(static, ny, nx, cells),
                          schema.SENSOR_AMSR2: 0.010 * smooth_field(static, ny, nx, cells)}
        self.vegetation = vegetation
        # ASCAT's seasonal error: over- or under-corrected vegetation, in proportion to
        # the mean optical depth, the sign varying at the land-cover scale (1 deg)
        tau_mean = land.TAU_PER_INDEX * vegetation.astype(np.float64)
        sign = smooth_field(static, ny, nx, max(1.0 / res, 1.0))
        self.ascat_season = ASCAT_SEASON * (tau_mean / 0.5) * sign
        wet, dry = DRY_RAIN_MM[1], DRY_RAIN_MM[0]
        self.aridity = np.clip((wet - p_ann) / (wet - dry), 0.0, 1.0)
        self.persist = LatentField(seed, "retrieval-persist", ny, nx, res, PERSIST_DEG,
                                   float(np.exp(-1.0 / PERSIST_DAYS)), (0.0, 0.0), 0)
        self.ascat_persist = LatentField(seed, "ascat-persist", ny, nx, res,
                                         ASCAT_PERSIST_DEG,
                                         float(np.exp(-1.0 / ASCAT_PERSIST_DAYS)), (0.0, 0.0), 0)

    def ascat_sensitivity(self, doy: np.ndarray) -> np.ndarray:
        """ASCAT's sensitivity to soil moisture relative to a bare, moist-climate soil on
        days of year ``doy``: the canopy's transmissivity at 40 deg times the dry-soil
        loss."""
        tau = land.optical_depth(self.vegetation, doy)
        return (transmissivity(tau, ASCAT_INCIDENCE_DEG)
                * (1.0 - DRY_LOSS * self.aridity)[None])


def amsr_retrieval(errors: RetrievalErrors, sensor: np.ndarray, doy: np.ndarray,
                   truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """AMSR values (float64, m3 m-3; NaN on days without a sensor) for one block of days.

    ``sensor``, ``doy`` (days of year) and ``truth`` cover the same consecutive days,
    which follow the previous block's (the persistent error carries on).  Draws the
    white noise from ``rng``.
    """
    t64 = truth.astype(np.float64)
    amsr = np.full(truth.shape, np.nan)
    eps = rng.standard_normal(truth.shape)
    persist = errors.persist.next(truth.shape[0])
    d3 = doy[:, None, None]
    tau = land.optical_depth(errors.vegetation, d3)
    amplify = 1.0 / transmissivity(tau, AMSR_INCIDENCE_DEG)
    # sensitivity lowest at the vegetation peak (an imperfect vegetation correction)
    veg = errors.vegetation.astype(np.float64)[None]
    season = 1.0 - SENS_SEASON * veg * np.cos(2 * np.pi * (d3 - land.VEG_PEAK_DOY) / 365.25)
    for code, sen in AMSR_SENSORS:
        d = sensor == code
        if d.any():
            amsr[d] = (SM_REF + sen["bias"] + sen["gain"] * season[d] * (t64[d] - SM_REF)
                       + errors.bias_maps[code][None]
                       + amplify[d] * (sen["persist"] * persist[d] + sen["noise"] * eps[d]))
    return np.clip(amsr, 0.0, AMSR_MAX)


def ascat_retrieval(errors: RetrievalErrors, doy: np.ndarray, truth: np.ndarray,
                    porosity: np.ndarray, residual: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """ASCAT values (float64, percent of saturation) for one block of days, gaps not yet
    applied (blocks in order: the persistent error carries on).  Draws the noise from
    ``rng``."""
    t64 = truth.astype(np.float64)
    por = porosity[None].astype(np.float64)
    res = residual[None].astype(np.float64)
    d3 = doy[:, None, None]
    eps = rng.standard_normal(truth.shape)
    persist = errors.ascat_persist.next(truth.shape[0])
    season = errors.ascat_season[None] * np.cos(2 * np.pi * (d3 - land.VEG_PEAK_DOY) / 365.25)
    err = (ASCAT_NOISE * eps + ASCAT_PERSIST * persist + season) / errors.ascat_sensitivity(d3)
    ascat = 100.0 * (t64 - res) / (por - res) + err
    return np.clip(ascat, 0.0, 100.0)
