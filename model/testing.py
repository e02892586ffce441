"""Helpers for tests of the model package (mock data without deprecation noise)."""

from __future__ import annotations

import warnings

import xarray as xr

from data_catalog import schema


def mock_world(**kw) -> xr.Dataset:
    """``schema.mock_grid_dataset``; its ``DatetimeIndex.dayofyear`` warns under pandas 3."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dayofyear is deprecated.*")
        return schema.mock_grid_dataset(**kw)
