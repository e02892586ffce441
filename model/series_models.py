"""The models of a series build: factories named ``"module:function"`` and their provenance.

A build names its models by a factory spec (stored in the store's attributes, so that a
resumed build can tell whether the models changed): :data:`SHIPPED_MODELS` (the trained
checkpoints, by radiometer) or :data:`PERSISTENCE_MODELS`, a transparent baseline with the
wrapper's streaming contract that stands in for the ConvLSTM in tests and benchmarks.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from data_catalog import locations, schema

#: Model factories: ``"module:function"`` returning ``{sensor: model}``.
SHIPPED_MODELS = "model.inference:load_models"
# the name under which stores record it (model.series re-exports the factory): changing
# it would change the digest of every persistence-built store
PERSISTENCE_MODELS = "model.series:persistence_models"

# ---------------------------------------------------------------- stand-in model
class PersistenceModel:
    """A transparent baseline with the model wrapper's streaming contract.

    Observed days keep the observation; a gap day relaxes yesterday's value towards
    the ASCAT estimate (``ascat_sm / 100 * porosity``) where ASCAT has one, else keeps
    it.  The state is yesterday's value per cell.  It stands in for the ConvLSTM in
    tests and benchmarks when no checkpoint is available, and is deterministic.

    Parameters
    ----------
    relax
        Weight of the ASCAT estimate on a gap day (0: pure persistence).
    porosity
        Converts ASCAT degree of saturation (%) to m3 m-3.
    initial
        Value of a cell that has never been observed nor seen by ASCAT.
    """

    metadata: dict

    def __init__(self, relax: float = 0.2, porosity: float = 0.45, initial: float = 0.25):
        self.relax, self.porosity, self.initial = relax, porosity, initial
        self.metadata = {"name": "persistence", "relax": relax, "porosity": porosity,
                         "initial": initial, "description": PersistenceModel.__doc__.split(
                             "\n")[0]}

    lead_days = 0

    def prepare(self, ds: xr.Dataset, n_days: int | None = None):
        """Canonical slice (its first ``n_days`` days) -> ``(1, T, 3, H, W)``: AMSR (m3 m-3,
        0 in gaps), observed mask, ASCAT as m3 m-3 (NaN where missing)."""
        import torch

        if n_days is not None:
            ds = ds.isel({schema.TIME: slice(0, n_days)})

        amsr = ds[schema.AMSR_SM].values.astype(np.float32)
        observed = np.isfinite(amsr)
        ascat = ds[schema.ASCAT_SM].values.astype(np.float32) / 100.0 * self.porosity
        x = np.stack([np.where(observed, amsr, 0), observed, ascat], axis=1)[None]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def stream(self, x, state=None):
        """Run through the ``T`` days of ``x`` ``(B, T, 3, H, W)``; returns
        ``((B, T, H, W), state)``."""
        import torch

        b, n, _, h, w = x.shape
        prev = (torch.full((b, h, w), self.initial) if state is None else state.clone())
        out = torch.empty((b, n, h, w), dtype=torch.float32)
        for t in range(n):
            amsr, observed, ascat = x[:, t, 0], x[:, t, 1] > 0, x[:, t, 2]
            relaxed = torch.where(torch.isfinite(ascat),
                                  (1 - self.relax) * prev + self.relax * ascat, prev)
            prev = torch.where(observed, amsr, relaxed)
            out[:, t] = prev
        return out, prev


def persistence_models(**_: Any) -> dict[int, PersistenceModel]:
    """Model factory of the stand-in: the same baseline for both sensors."""
    m = PersistenceModel()
    return {schema.SENSOR_AMSRE: m, schema.SENSOR_AMSR2: m}


# ---------------------------------------------------------------- models
def _resolve(spec: str) -> Callable[..., dict]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@functools.lru_cache(maxsize=4)
def load_factory_models(spec: str, checkpoint_dir: str | None) -> dict:
    """Models of a factory spec, loaded once per process on the CPU."""
    kwargs: dict[str, Any] = {"device": "cpu"}
    if checkpoint_dir is not None:
        kwargs["checkpoint_dir"] = checkpoint_dir
    models = _resolve(spec)(**kwargs)
    for m in models.values():
        if hasattr(m, "eval"):
            m.eval()
    return models


_VOLATILE_METADATA = ("created", "date_created", "loaded", "checkpoint_path", "device")


def model_provenance(spec: str, checkpoint_dir: str | None) -> dict:
    """What identifies the models: factory, checkpoint files and their SHA-256, metadata."""
    from model.cache import file_sha256

    prov: dict[str, Any] = {"factory": spec}
    if spec == SHIPPED_MODELS:
        d = Path(checkpoint_dir) if checkpoint_dir else locations.checkpoint_dir()
        prov["checkpoints"] = {p.name: file_sha256(p) for p in sorted(d.glob("*.pt"))}
    from model.errors import path_for

    errors = path_for(checkpoint_dir)  # the error model of filled_sm_uncertainty
    prov["error_model"] = file_sha256(errors) if errors.exists() else None
    models = load_factory_models(spec, checkpoint_dir)
    meta = {}
    for sensor, m in sorted(models.items(), key=lambda kv: str(kv[0])):
        md = getattr(m, "metadata", {}) or {}
        # scalars that identify the model; not where or when it was loaded
        meta[str(sensor)] = {k: md[k] for k in sorted(md) if isinstance(
            md[k], (str, int, float, bool)) and k not in _VOLATILE_METADATA}
    prov["metadata"] = meta
    return prov
