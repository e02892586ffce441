"""Seeded random building blocks of the demo world: streams, smooth fields, AR(1) series.

Every component of the world draws from its own named stream (:func:`stream`), so adding
or reordering code never shifts another component's numbers.  What does change a world is
the order of draws *within* one stream: each caller says which draws it takes and in what
order.  Nothing here imitates a published figure; the physical scales (correlation
lengths, persistence) are chosen by the modules that use these blocks.

* :func:`smooth_field`: a static stationary Gaussian field (soils, vegetation, bias maps);
* :func:`ar1`: a first-order autoregressive series (temperature anomalies, station drift);
* :class:`LatentField`: a Gaussian field that evolves day by day, AR(1) in time and
  drifting in space (storms, the persistent retrieval error).
"""

from __future__ import annotations

import zlib

import numpy as np
import scipy.fft as sfft


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per component, stable under code reordering."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def gauss_filter(shape: tuple[int, int], length: float) -> np.ndarray:
    """Spectral Gaussian filter (sd ``length`` cells) on the ``rfft2`` half-plane of
    ``shape``, normalised so that filtered unit white noise has unit variance."""
    ky = sfft.fftfreq(shape[0])[:, None]
    kx_full = sfft.fftfreq(shape[1])[None, :]
    full = np.exp(-2.0 * np.pi**2 * length**2 * (ky**2 + kx_full**2))
    norm = np.sqrt(np.mean(full**2))
    kx = sfft.rfftfreq(shape[1])[None, :]
    return np.exp(-2.0 * np.pi**2 * length**2 * (ky**2 + kx**2)) / norm


def smooth_field(rng: np.random.Generator, ny: int, nx: int, length: float) -> np.ndarray:
    """A stationary Gaussian random field with unit variance and correlation ``length`` cells."""
    pad = int(np.ceil(3 * length))
    shape = (sfft.next_fast_len(ny + 2 * pad), sfft.next_fast_len(nx + 2 * pad))
    white = rng.standard_normal(shape)
    field = sfft.irfft2(sfft.rfft2(white) * gauss_filter(shape, length), s=shape)
    return field[pad:pad + ny, pad:pad + nx]


def ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    """``n`` steps of a stationary AR(1) series with lag-one correlation ``rho`` and
    standard deviation ``sd``."""
    eps = rng.standard_normal(n) * sd * np.sqrt(1 - rho**2)
    out = np.empty(n)
    x = rng.standard_normal() * sd
    for i in range(n):
        x = rho * x + eps[i]
        out[i] = x
    return out


class LatentField:
    """A latent unit-variance Gaussian field on an ``ny x nx`` grid, produced day by day.

    AR(1) in time (``rho`` a day), Gaussian in space (``length_deg``), drifting
    ``drift_deg`` (north, east) a day.  The field is kept in Fourier space, where a drift
    is a phase shift, and successive calls to :meth:`next` continue the same series.

    Parameters
    ----------
    seed, name : int, str
        Its own random stream (:func:`stream`).
    ny, nx : int
        Grid size (cells).
    res : float
        Grid spacing (degrees).
    length_deg, rho, drift_deg
        Correlation length (degrees), day-to-day correlation, drift (degrees a day).
    pad_days : int
        Days of drift the padding covers (see below).
    """

    def __init__(self, seed: int, name: str, ny: int, nx: int, res: float, length_deg: float,
                 rho: float, drift_deg: tuple[float, float], pad_days: int):
        length = max(length_deg / res, 1.0)
        drift = (drift_deg[0] / res, drift_deg[1] / res)  # cells a day north, east
        # the padding lets a feature leaving the east edge decorrelate before the periodic
        # Fourier domain brings it back in the west
        pad_y = int(np.ceil(3 * length + abs(drift[0]) * pad_days))
        pad_x = int(np.ceil(3 * length + abs(drift[1]) * pad_days))
        shape = (sfft.next_fast_len(ny + 2 * pad_y, real=True),
                 sfft.next_fast_len(nx + 2 * pad_x, real=True))
        ky = sfft.fftfreq(shape[0])[:, None]
        kx = sfft.rfftfreq(shape[1])[None, :]
        phase = np.exp(-2j * np.pi * (ky * drift[0] + kx * drift[1]))
        # white noise drawn directly in Fourier space: the rfft of unit real white
        # noise has E|W|^2 = N, i.e. sqrt(N / 2) times a unit complex normal
        scale = gauss_filter(shape, length) * np.sqrt(shape[0] * shape[1] / 2.0)
        # irfft keeps only the real part of the kx = 0 (and Nyquist) column, which
        # would halve their variance: compensate
        scale[:, 0] *= np.sqrt(2.0)
        if shape[1] % 2 == 0:
            scale[:, -1] *= np.sqrt(2.0)
        self.ny, self.nx = ny, nx
        self.rng = stream(seed, name)
        self.shape = shape
        self.pad = (pad_y, pad_x)
        self.scale = scale.astype(np.float32)
        self.step = (rho * phase).astype(np.complex64)
        self.innov = np.float32(np.sqrt(1 - rho**2))
        self.state: np.ndarray | None = None

    def next(self, n: int) -> np.ndarray:
        """``n`` more days of the field, shape ``(n, ny, nx)`` (unit variance, float32)."""
        half = (self.shape[0], self.shape[1] // 2 + 1)
        z = self.rng.standard_normal((n, *half, 2), dtype=np.float32)
        spec = np.empty((n, *half), dtype=np.complex64)
        spec.real = z[..., 0]
        spec.imag = z[..., 1]
        spec *= self.scale
        state = self.state
        step, innov = self.step, self.innov
        for i in range(n):
            if state is None:
                state = spec[i].copy()
            else:
                state *= step
                state += innov * spec[i]
            spec[i] = state
        self.state = state
        field = sfft.irfft2(spec, s=self.shape, workers=-1, overwrite_x=True)
        py, px = self.pad
        return field[:, py:py + self.ny, px:px + self.nx]
