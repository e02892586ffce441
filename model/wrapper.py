"""The model wrapper: owns the contract between canonical data and the pure network.

:class:`GapFiller` holds the network, the normalisation statistics (buffers), the optional
per-pixel sensor matching of a transferred model (buffers) and the checkpoint metadata;
it checks its inputs and runs inference under :func:`torch.inference_mode`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn

from data_catalog import grid, schema
from data_catalog.errors import CheckpointFitError, DataError, FormatError, MissingFileError
from model.checkpoint_file import CHECKPOINT_FORMAT, check_archive
from model.config import ModelConfig
from model.network import ConvLSTMNet, State
from model.tensors import NormStats, channel_names, channels_from_arrays, dataset_arrays, n_channels

log = logging.getLogger(__name__)

SENSOR_NAMES = {schema.SENSOR_AMSRE: "amsre", schema.SENSOR_AMSR2: "amsr2"}
_MATCH_BUFFERS = ("match_src_mean", "match_src_std", "match_ref_mean", "match_ref_std",
                  "match_lat", "match_lon")


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the checkout (``.dirty`` if model/ code changed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("amsr-gapfill-explorer")
    except PackageNotFoundError:  # pragma: no cover - not installed
        v = "0+unknown"
    repo = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo,
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        # checkpoints are outputs, not code: a fresh amsr2.pt must not make transfer "dirty"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "model",
                                ":(exclude)model/checkpoints"], cwd=repo,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{v}+g{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return v


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict: every tensor's name, dtype, shape and bytes, in name order.

    Recorded in a checkpoint's metadata at save time and checked at load time, so a
    checkpoint whose numbers changed is refused even if its archive was rewritten.
    """
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(state[name].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class GapFiller(nn.Module):
    """A trained ConvLSTM gap filler with its contract.

    Parameters
    ----------
    model_config : ModelConfig
        Architecture.
    norm : NormStats
        Normalisation of inputs and of the output.
    metadata : dict, optional
        JSON-able provenance: config, norm stats, training period/region, data
        fingerprint, code version, parent checkpoint, sensor.

    Notes
    -----
    A transferred (AMSR-E) model carries per-pixel mean/std maps (``match_*`` buffers) that
    map its sensor's AMSR values to the enhanced-AMSR2 reference before they enter the
    network; its output is in the reference (AMSR2) climatology, so the record has no step
    at the 2011/2012 seam.  :meth:`to_reference` / :meth:`from_reference` apply the map.
    """

    def __init__(self, model_config: ModelConfig, norm: NormStats,
                 metadata: dict[str, Any] | None = None):
        super().__init__()
        self.model_config = model_config
        self.lead_days = int(model_config.lead_days)
        self.n_channels = n_channels(self.lead_days)
        self.net = ConvLSTMNet(self.n_channels, model_config.filters, model_config.kernel_size,
                               model_config.head_filters, model_config.head_kernel,
                               recurrent_activation=model_config.recurrent_activation,
                               unit_forget_bias=model_config.unit_forget_bias)
        self.register_buffer("norm", norm.as_tensor())
        for name in _MATCH_BUFFERS:
            self.register_buffer(name, torch.zeros(0))
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.metadata.setdefault("model", _asdict(model_config))
        self.metadata["norm"] = norm.to_dict()
        self.metadata.setdefault("channels", list(channel_names(self.lead_days)))
        self.amp_dtype: torch.dtype | None = None
        """Autocast dtype of :meth:`stream` (see :func:`model.inference.configure_for_device`)."""

    # ------------------------------------------------------------------ properties
    @property
    def stats(self) -> NormStats:
        return NormStats.from_tensor(self.norm)

    @property
    def device(self) -> torch.device:
        return self.norm.device

    @property
    def channels_last(self) -> bool:
        return self.net.convlstm[0].channels_last

    @channels_last.setter
    def channels_last(self, flag: bool) -> None:
        self.net.set_channels_last(bool(flag))

    @property
    def sensor(self) -> str:
        return str(self.metadata.get("sensor", "amsr2"))

    @property
    def has_matching(self) -> bool:
        return self.match_src_mean.numel() > 0

    def receptive_radius(self, steps: int) -> int:
        return self.net.receptive_radius(steps)

    # ------------------------------------------------------------------ matching
    def set_matching(self, src_mean: np.ndarray, src_std: np.ndarray, ref_mean: np.ndarray,
                     ref_std: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        """Install per-pixel mean/std matching maps ``(H, W)`` on the grid ``lat``, ``lon``."""
        dev = self.device
        for name, v in zip(_MATCH_BUFFERS, (src_mean, src_std, ref_mean, ref_std, lat, lon),
                           strict=True):
            setattr(self, name, torch.tensor(np.array(v, dtype=np.float32), dtype=torch.float32,
                                                device=dev))

    def _match_maps(self, lat: np.ndarray, lon: np.ndarray, outside: str = "error"
                    ) -> tuple[np.ndarray, ...]:
        """Matching maps for a grid: the nearest cell of the training grid.

        Cells outside the training grid: ``outside="error"`` raises
        :class:`CheckpointFitError` (a transferred model is never used silently where it has
        no maps; :func:`model.fit.check_fits` says so before any work), ``"missing"`` gives
        NaN (callers treat the AMSR value there as unobserved: the spatial context around a
        region), ``"domain_mean"`` the maps' mean (only when a caller explicitly allows it).
        Cells inside without a fitted value (never observed) take the maps' mean.
        """
        if outside not in ("error", "missing", "domain_mean"):
            raise ValueError(f"outside={outside!r}: expected error, missing or domain_mean")
        maps = [getattr(self, n).cpu().numpy().astype(np.float64) for n in _MATCH_BUFFERS[:4]]
        glat = self.match_lat.cpu().numpy()
        glon = self.match_lon.cpu().numpy()
        ii = grid.nearest_index(glat, lat, inside=False)
        jj = grid.nearest_index(glon, lon, inside=False)
        inside = ((grid.nearest_index(glat, lat) >= 0)[:, None]
                  & (grid.nearest_index(glon, lon) >= 0)[None, :])
        if outside == "error" and not inside.all():
            w, s, e, n = grid.bounds(glat, glon)
            raise CheckpointFitError(
                f"the transferred {self.sensor} model's matching maps cover W,S,E,N = "
                f"{w:g},{s:g},{e:g},{n:g}; {int((~inside).sum())} of the {inside.size} cells "
                "asked for lie outside them")
        out = []
        for m in maps:
            mean = np.nanmean(m)
            v = m[np.ix_(ii, jj)]
            v = np.where(np.isfinite(v), v, mean)
            v = np.where(inside, v, np.nan if outside == "missing" else mean)
            out.append(v)
        return tuple(out)

    def to_reference(self, amsr: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                     outside: str = "error") -> np.ndarray:
        """Map this sensor's AMSR values ``(..., H, W)`` to the reference climatology
        (``outside``: cells outside the matching maps, see :meth:`_match_maps`)."""
        if not self.has_matching:
            return amsr
        sm, ss, rm, rs = self._match_maps(np.asarray(lat), np.asarray(lon), outside)
        return ((amsr - sm) / ss * rs + rm).astype(np.float32)

    def from_reference(self, sm: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                       outside: str = "error") -> np.ndarray:
        """Inverse of :meth:`to_reference` (model output back to the sensor's own units)."""
        if not self.has_matching:
            return sm
        smean, ss, rm, rs = self._match_maps(np.asarray(lat), np.asarray(lon), outside)
        return ((sm - rm) / rs * ss + smean).astype(np.float32)

    # ------------------------------------------------------------------ data -> tensor
    def prepare(self, ds: xr.Dataset, device: str | torch.device | None = None,
                n_days: int | None = None) -> torch.Tensor:
        """Canonical slice (consecutive days, one region) -> ``(1, T, C, H, W)`` float32.

        Applies this checkpoint's per-sensor matching to ``amsr_sm`` first (context cells
        outside its matching maps count as unobserved).  The tensor is
        put on ``device`` (default: the model's; tiled inference keeps it on the CPU and
        moves one tile at a time).  With look-ahead (``lead_days > 0``) give ``ds`` up to
        ``lead_days`` days more than the ``n_days`` to prepare: they feed the last days'
        look-ahead channels (missing where not given).
        """
        arr = dataset_arrays(ds)
        # context cells outside a transferred model's matching maps count as unobserved
        amsr = self.to_reference(arr["amsr"], ds[schema.LAT].values, ds[schema.LON].values,
                                 outside="missing")
        valid = arr["valid"] & np.isfinite(amsr) if self.has_matching else arr["valid"]
        x = channels_from_arrays(amsr, valid, arr["ascat"], arr["doy"], self.stats,
                                 lead=self.lead_days, n_days=n_days)
        return torch.from_numpy(x)[None].to(self.device if device is None else device)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`DataError` unless ``x`` is ``(B, T, C, H, W)`` floating point."""
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            raise DataError(f"expected a (B, T, {self.n_channels}, H, W) tensor, got "
                            f"{getattr(x, 'shape', type(x))}")
        if x.shape[2] != self.n_channels:
            raise DataError(f"expected {self.n_channels} channels "
                            f"{channel_names(self.lead_days)}, got {x.shape[2]}")
        if not x.is_floating_point():
            raise DataError(f"expected a floating point tensor, got {x.dtype}")
        if min(x.shape[3:]) < 1 or x.shape[1] < 1:
            raise DataError(f"empty input {tuple(x.shape)}")

    # ------------------------------------------------------------------ running
    def forward(self, x: torch.Tensor, state: list[State] | None = None
                ) -> tuple[torch.Tensor, list[State]]:
        """Normalised output ``(B, T, H, W)`` (training path, with autograd)."""
        return self.net(x, state)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.norm[1] + self.norm[0]

    def stream(self, x: torch.Tensor, state: list[State] | None = None
               ) -> tuple[torch.Tensor, list[State]]:
        """Soil moisture for every day of ``x``, carrying the recurrent state.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, T, C, H, W)`` from :meth:`prepare` (moved to the model's device).
        state : list of (h, c), optional
            The state returned by the previous call, to continue a long series.

        Returns
        -------
        sm, state
            ``(B, T, H, W)`` float32 in m3 m-3 (in the reference climatology for a matched
            model) and the final state.
        """
        self.check_input(x)
        x = x.to(self.device, torch.float32)
        with torch.inference_mode():
            if self.amp_dtype is not None:
                with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype):
                    y, state = self.net(x, state)
            else:
                y, state = self.net(x, state)
            sm = self.denormalize(y.float()).clamp_(0.0, 1.0)
        return sm, state

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> str:
        """Write the checkpoint; returns its sha256."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.metadata)
        meta["model"] = _asdict(self.model_config)
        meta["norm"] = self.stats.to_dict()
        meta["channels"] = list(channel_names(self.lead_days))
        for key in ("checkpoint_path", "checkpoint_sha256"):  # describe the *loaded* file
            meta.pop(key, None)
        meta.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
        meta.setdefault("code_version", code_version())
        meta["torch_version"] = str(torch.__version__)
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        meta["weights_sha256"] = weights_sha256(state)
        meta = _plain(meta)
        torch.save({"format": CHECKPOINT_FORMAT, "metadata": meta, "state_dict": state}, path)
        self.metadata = meta
        return file_sha256(path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> GapFiller:
        """Read a checkpoint written by :meth:`save` onto ``device``, verified.

        The archive's CRC-32 of every member is checked first (torch does not), then the
        weights against the ``weights_sha256`` recorded at save time (checkpoints written
        before it was recorded are verified by the CRCs alone).  Any problem is one
        :class:`FormatError` line naming the file.
        """
        path = Path(path)
        if not path.exists():
            raise MissingFileError("checkpoint not found", path)
        check_archive(path)
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch's message spans several lines
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise FormatError(f"not a readable torch checkpoint ({first})", path) from None
        if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
            raise FormatError(f"not a {CHECKPOINT_FORMAT} checkpoint", path)
        meta, sd = blob.get("metadata"), blob.get("state_dict")
        if not isinstance(meta, dict) or not isinstance(sd, dict):
            raise FormatError("checkpoint without metadata or state_dict", path)
        recorded = meta.get("weights_sha256")
        if recorded is not None and recorded != weights_sha256(sd):
            raise FormatError("the weights do not match the checksum recorded when the "
                              "checkpoint was saved (the file was altered)", path)
        try:
            mc = ModelConfig(**meta["model"])
            obj = cls(mc, NormStats.from_dict(meta["norm"]), meta)
            for name in _MATCH_BUFFERS:  # size the optional matching buffers before loading
                if name in sd:
                    setattr(obj, name, torch.zeros_like(sd[name]))
            obj.load_state_dict(sd)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise FormatError(f"checkpoint does not fit the network it describes ({first})",
                              path) from None
        obj.metadata["checkpoint_path"] = str(path)
        obj.metadata["checkpoint_sha256"] = file_sha256(path)
        obj.eval()
        return obj.to(torch.device(device))


def _plain(obj: Any) -> Any:
    """A JSON round trip: metadata must load with ``torch.load(weights_only=True)``."""
    import json

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(obj, default=default))


def _asdict(cfg: ModelConfig) -> dict:
    import dataclasses

    return dataclasses.asdict(cfg)
