"""The one xarray -> tensor module: canonical dataset -> ``(T, C, H, W)`` float32 channels.

Channels per day (:data:`CHANNELS`):

0. ``amsr``         AMSR soil moisture, normalised, gaps set to :data:`AMSR_FILL`
1. ``amsr_valid``   1 where AMSR observed (``gap_mask == 0`` and finite), else 0
2. ``ascat``        ASCAT % saturation, normalised, missing set to 0
3. ``ascat_valid``  1 where ASCAT present (0 everywhere before 2007: the model is told)
4. ``doy_sin``      sin(2 pi doy / 365.25)
5. ``doy_cos``      cos(2 pi doy / 365.25)

and, for a model with ``lead_days = L > 0`` (look-ahead: the network fills day *t* knowing
days *t+1 .. t+L*, as a smoother rather than a filter), four channels per following day
``j = 1..L``: ``amsr_next{j}``, ``amsr_valid_next{j}``, ``ascat_next{j}``,
``ascat_valid_next{j}`` (the same encoding as channels 0-3).  Days past the end of the
arrays given are missing (valid 0), so the model still runs at the end of a record.

Training (numpy arrays already in memory) and inference (xarray slices) both go through
:func:`channels_from_arrays`, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr

from data_catalog import schema
from data_catalog.errors import DataError, EmptySelectionError, MissingVariableError

CHANNELS = ("amsr", "amsr_valid", "ascat", "ascat_valid", "doy_sin", "doy_cos")
N_CHANNELS = len(CHANNELS)
"""Channels of a model without look-ahead (``lead_days = 0``)."""
LEAD_CHANNELS = ("amsr_next{j}", "amsr_valid_next{j}", "ascat_next{j}", "ascat_valid_next{j}")


def channel_names(lead: int = 0) -> tuple[str, ...]:
    """Names of the input channels of a model that looks ``lead`` days ahead."""
    return CHANNELS + tuple(n.format(j=j) for j in range(1, lead + 1) for n in LEAD_CHANNELS)


def n_channels(lead: int = 0) -> int:
    return N_CHANNELS + len(LEAD_CHANNELS) * lead
AMSR_FILL = 0.0
"""Normalised value put into AMSR gaps (0 = the training mean)."""
ASCAT_FILL = 0.0


@dataclass(frozen=True)
class NormStats:
    """Normalisation statistics (global, from the training period's valid observations).

    Attributes
    ----------
    amsr_mean, amsr_std : float
        Of observed AMSR soil moisture, m3 m-3 (also de-normalise the model output).
    ascat_mean, ascat_std : float
        Of ASCAT, percent of saturation.
    """

    amsr_mean: float
    amsr_std: float
    ascat_mean: float
    ascat_std: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> NormStats:
        return cls(**{k: float(d[k]) for k in ("amsr_mean", "amsr_std", "ascat_mean",
                                                "ascat_std")})

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([self.amsr_mean, self.amsr_std, self.ascat_mean, self.ascat_std],
                            dtype=torch.float32)

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> NormStats:
        v = [float(x) for x in t.detach().cpu().tolist()]
        return cls(*v)


def amsr_valid_mask(amsr: np.ndarray, gap_mask: np.ndarray | None) -> np.ndarray:
    """Boolean: AMSR is a valid observation (finite and flagged ``observed``)."""
    ok = np.isfinite(amsr)
    if gap_mask is not None:
        ok &= gap_mask == schema.OBSERVED
    return ok


def compute_norm_stats(amsr: np.ndarray, valid: np.ndarray, ascat: np.ndarray) -> NormStats:
    """Mean and standard deviation of valid AMSR and of present ASCAT values."""
    a = amsr[valid]
    s = ascat[np.isfinite(ascat)]
    if a.size < 2:
        raise EmptySelectionError("no valid AMSR observations to compute statistics from",
                                  variable=schema.AMSR_SM)
    am, asd = float(a.mean()), float(a.std())
    sm, ssd = (float(s.mean()), float(s.std())) if s.size > 1 else (50.0, 20.0)
    return NormStats(am, max(asd, 1e-3), sm, max(ssd, 1e-3))


def doy_of(time: np.ndarray | pd.DatetimeIndex) -> np.ndarray:
    """Day of year (1..366) of datetime64 values."""
    return pd.DatetimeIndex(time).day_of_year.to_numpy()


def channels_from_arrays(amsr: np.ndarray, amsr_valid: np.ndarray, ascat: np.ndarray,
                         doy: np.ndarray, stats: NormStats, *, lead: int = 0,
                         n_days: int | None = None) -> np.ndarray:
    """Stack the model channels from physical arrays.

    Parameters
    ----------
    amsr : ndarray (T, H, W)
        AMSR soil moisture in m3 m-3 (any value where not valid).
    amsr_valid : ndarray of bool (T, H, W)
        Where ``amsr`` is a valid observation the model may see.
    ascat : ndarray (T, H, W)
        ASCAT in percent of saturation, NaN where missing.
    doy : ndarray (T,)
        Day of year of each step.
    stats : NormStats
    lead : int
        Look-ahead days: day ``t`` also gets the AMSR and ASCAT channels of days
        ``t+1 .. t+lead`` (missing where past the end of the arrays).
    n_days : int, optional
        Frames to return (the first ``n_days`` days; default all ``T``).  Give the arrays
        ``lead`` more days than that so the last frames see their following days.

    Returns
    -------
    ndarray float32 (n_days, C, H, W), ``C = n_channels(lead)``
    """
    t, h, w = amsr.shape
    n = t if n_days is None else int(n_days)
    if not 0 <= n <= t:
        raise ValueError(f"n_days {n_days} outside 0..{t}")
    base = np.empty((t, 4, h, w), np.float32)
    a = (amsr - stats.amsr_mean) / stats.amsr_std
    base[:, 0] = np.where(amsr_valid, a, AMSR_FILL)
    base[:, 1] = amsr_valid
    av = np.isfinite(ascat)
    base[:, 2] = np.where(av, (np.nan_to_num(ascat) - stats.ascat_mean) / stats.ascat_std,
                          ASCAT_FILL)
    base[:, 3] = av
    out = np.zeros((n, n_channels(lead), h, w), np.float32)
    out[:, :4] = base[:n]
    ang = 2.0 * np.pi * np.asarray(doy, np.float64)[:n] / 365.25
    out[:, 4] = np.sin(ang)[:, None, None]
    out[:, 5] = np.cos(ang)[:, None, None]
    for j in range(1, lead + 1):
        c = N_CHANNELS + 4 * (j - 1)
        m = max(0, min(n, t - j))  # frames whose day t+j is inside the arrays
        out[:m, c:c + 4] = base[j:j + m]
        # frames past the end keep zeros: fill values and valid flags 0 (missing)
    return out


def check_slice(ds: xr.Dataset, *, need_ascat: bool = False) -> None:
    """Raise a typed error unless ``ds`` is a canonical slice of consecutive days.

    Checks dims ``(time, lat, lon)``, the presence of ``amsr_sm`` (and ``ascat_sm`` when
    asked), a non-empty grid and that days are consecutive (the recurrence assumes it).
    """
    if schema.AMSR_SM not in ds:
        raise MissingVariableError("needed by the model", variable=schema.AMSR_SM)
    if need_ascat and schema.ASCAT_SM not in ds:
        raise MissingVariableError("needed by the model", variable=schema.ASCAT_SM)
    dims = ds[schema.AMSR_SM].dims
    if dims != schema.GRID_DIMS:
        raise DataError(f"dims {dims}, expected {schema.GRID_DIMS}", variable=schema.AMSR_SM)
    if any(ds.sizes[d] == 0 for d in schema.GRID_DIMS):
        raise EmptySelectionError(f"empty slice {dict(ds.sizes)}")
    t = pd.DatetimeIndex(ds[schema.TIME].values)
    if len(t) > 1 and not (np.diff(t.values) == np.timedelta64(1, "D")).all():
        raise DataError("time steps are not consecutive days", variable=schema.TIME)


def dataset_arrays(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Load the variables the model reads from a canonical slice as numpy arrays."""
    check_slice(ds)
    amsr = np.asarray(ds[schema.AMSR_SM].values, np.float32)
    gm = ds[schema.GAP_MASK].values if schema.GAP_MASK in ds else None
    if schema.ASCAT_SM in ds:
        ascat = np.asarray(ds[schema.ASCAT_SM].values, np.float32)
    else:  # no ASCAT at all: the mask channel says so
        ascat = np.full(amsr.shape, np.nan, np.float32)
    return {"amsr": amsr, "valid": amsr_valid_mask(amsr, gm), "ascat": ascat,
            "doy": doy_of(ds[schema.TIME].values)}


def to_array(ds: xr.Dataset, stats: NormStats, *, amsr: np.ndarray | None = None,
             lead: int = 0, n_days: int | None = None) -> np.ndarray:
    """Canonical slice -> ``(T, C, H, W)`` float32 channels.

    ``amsr`` replaces the dataset's AMSR values (e.g. after per-sensor matching); the
    validity still comes from the dataset's ``gap_mask``.  ``lead`` and ``n_days`` as in
    :func:`channels_from_arrays`.
    """
    arr = dataset_arrays(ds)
    if amsr is not None:
        arr["amsr"] = amsr
    return channels_from_arrays(arr["amsr"], arr["valid"], arr["ascat"], arr["doy"], stats,
                                lead=lead, n_days=n_days)


def to_tensor(ds: xr.Dataset, stats: NormStats, *, amsr: np.ndarray | None = None,
              lead: int = 0, n_days: int | None = None) -> torch.Tensor:
    """Like :func:`to_array` as a torch tensor."""
    return torch.from_numpy(to_array(ds, stats, amsr=amsr, lead=lead, n_days=n_days))
