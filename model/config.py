"""Configuration dataclasses of the model, training and transfer, loadable from YAML."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from data_catalog.errors import FormatError, MissingFileError
from data_catalog.inputs import yaml_problem

MODEL_DIR = Path(__file__).resolve().parent
CONFIG_DIR = MODEL_DIR / "configs"


@dataclass
class ModelConfig:
    """Architecture of :class:`model.network.ConvLSTMNet`.

    Attributes
    ----------
    filters : list of int
        Filters of each ConvLSTM2D layer (the number of layers is its length).
    kernel_size : int
        Odd kernel of the ConvLSTM layers.
    head_filters : int
        Filters of the hidden Conv2D layer of the head (0: one 1x1 output convolution).
    head_kernel : int
        Kernel of that hidden head layer.
    recurrent_activation : str
        ``"sigmoid"`` or ``"hard_sigmoid"``.
    unit_forget_bias : bool
        Initialise the forget-gate bias to one (Keras default).
    lead_days : int
        Look-ahead: each day's input also holds the AMSR and ASCAT channels of the next
        ``lead_days`` days (0: a causal filter; > 0: a smoother that fills day *t* knowing
        whether it rained by *t+1*).  See :mod:`model.tensors`.
    """

    filters: list[int] = field(default_factory=lambda: [16, 16])
    kernel_size: int = 3
    head_filters: int = 16
    head_kernel: int = 3
    recurrent_activation: str = "sigmoid"
    unit_forget_bias: bool = True
    lead_days: int = 0


@dataclass
class TrainConfig:
    """Training of the base (AMSR2) model.

    Attributes
    ----------
    sensor : str
        ``"amsr2"`` or ``"amsre"``: which radiometer's days are the targets.
    world : str or None
        Path of the canonical dataset (zarr); None: the demo world
        (``data_catalog.locations.demo_world()``).
    region : list of float or None
        ``[W, S, E, N]`` subset of the world to train on; None: all of it.
    train_years, val_years, test_years : list of int or str
        ``[first, last]`` inclusive periods of the time split, as whole years
        (``[2013, 2020]``) or days (``[2015-04-01, 2016-03-31]``), or one of each (see
        :func:`period_days`); in YAML also as ``train_period``, ``val_period``,
        ``test_period``.  The test period is never read by training; ``gapfill evaluate``
        scores it.
    exclude_years : list of int
        Years inside ``train_years`` that training never reads (a test year held out of
        the middle of the training span, e.g. the AMSR-E year without ASCAT); training
        sequences never straddle the hole they leave.
    seq_len : int
        Days per training sequence (scored days).
    burn_in_max : int
        Up to this many days before each sequence are run without gradient to warm the
        state, so the model also works when streamed with a carried state.
    patch : int
        Square patch size in cells.
    batch_size : int
        Sequences per optimisation step.
    lr, weight_decay : float
        AdamW learning rate and weight decay.
    epochs, steps_per_epoch : int
        At most ``epochs`` x ``steps_per_epoch`` steps.
    val_batches : int
        Fixed validation batches scored after every epoch (same samples every time).
    patience : int
        Early stopping: epochs without validation improvement before stopping.
    max_minutes : float
        Wall-time cap of training (the best checkpoint so far is kept).
    hide_prob : float
        Probability that a day of a sequence gets a real gap pattern of another day laid
        over its observed pixels (hidden from the input, scored in the loss).
    hide_day_prob : float
        Probability that a day is hidden completely (no AMSR at all that day).
    hide_window_prob : float
        Probability that a whole sequence has no AMSR (the 2011/2012 gap year).
    hide_weeks_prob : float
        Probability that a sequence loses all AMSR of its patch for a run of days that
        starts in the burn-in (or on its first day) and ends on a scored day: a gap of one
        to three weeks, so the loss sees long gaps and not only single hidden days.
    hide_block_prob : float
        Probability that a sequence gets a square block of pixels (``hide_block_size``)
        hidden on every day, burn-in included: pixels far from their own observations,
        filled from their neighbours and ASCAT (permanent RFI, dense forest).
    hide_block_size : list of int
        ``[min, max]`` side of that block in cells.
    drop_ascat_prob : float
        Probability that a sequence has no ASCAT (AMSR-E years before 2007).
    drop_lead_prob : float
        Probability that a sequence's look-ahead days are cut (as at the end of a record;
        only for models with ``lead_days > 0``).
    hidden_weight, observed_weight : float
        Loss weights of hidden pixels and of still-visible observed pixels.
    lookback : int
        Default days of history :func:`model.inference.predict` runs through.
    seed : int
        Seed of numpy and torch (sampling, initialisation, hiding).
    num_threads : int
        ``torch.set_num_threads`` during training.
    out : str
        Checkpoint path to write.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    sensor: str = "amsr2"
    world: str | None = None
    region: list[float] | None = None
    train_years: list[int] = field(default_factory=lambda: [2013, 2020])
    val_years: list[int] = field(default_factory=lambda: [2021, 2021])
    test_years: list[int] = field(default_factory=lambda: [2022, 2022])
    exclude_years: list[int] = field(default_factory=list)
    seq_len: int = 12
    burn_in_max: int = 16
    patch: int = 32
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    epochs: int = 30
    steps_per_epoch: int = 40
    val_batches: int = 8
    patience: int = 5
    max_minutes: float = 8.0
    hide_prob: float = 0.5
    hide_day_prob: float = 0.08
    hide_window_prob: float = 0.05
    hide_weeks_prob: float = 0.0
    hide_block_prob: float = 0.0
    hide_block_size: list[int] = field(default_factory=lambda: [4, 12])
    drop_ascat_prob: float = 0.1
    drop_lead_prob: float = 0.1
    hidden_weight: float = 1.0
    observed_weight: float = 0.2
    lookback: int = 32
    seed: int = 42
    num_threads: int = 1
    out: str = "model/checkpoints/amsr2.pt"

    @classmethod
    def from_yaml(cls, path: str | Path):
        """Read a config file; unknown keys raise :class:`FormatError` naming them."""
        return cls.from_dict(_read_yaml(path), path)

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str | Path | None = None):
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        for alias, key in PERIOD_ALIASES.items():
            if alias in d and key in names:
                if key in d:
                    raise FormatError(f"both {alias!r} and {key!r} given; keep one", path)
                d[key] = d.pop(alias)
        for key in PERIOD_ALIASES.values():
            if key in d and key in names:
                d[key] = period_value(d[key], key, path)
        unknown = sorted(set(d) - names)
        if unknown:
            raise FormatError(f"unknown config keys {unknown}; expected some of {sorted(names)}",
                              path)
        if "model" in d:
            m = d["model"] or {}
            mnames = {f.name for f in dataclasses.fields(ModelConfig)}
            bad = sorted(set(m) - mnames)
            if bad:
                raise FormatError(f"unknown model keys {bad}; expected some of {sorted(mnames)}",
                                  path)
            d["model"] = ModelConfig(**m)
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON-able)."""
        return dataclasses.asdict(self)


@dataclass
class TransferConfig(TrainConfig):
    """Transfer learning AMSR2 -> AMSR-E (fields of :class:`TrainConfig` plus these).

    Attributes
    ----------
    freeze_convlstm : bool
        Keep the ConvLSTM layers of the parent fixed; only the Conv2D head is tuned.
    matching : str
        ``"meanstd"``: per-pixel mean/std matching of AMSR-E to the enhanced-AMSR2
        climatology (estimated from gap-free fields of both); ``"none"`` to disable.
    reference_years : list of int or str
        ``[first, last]`` AMSR2 period (years or days; YAML also ``reference_period``) whose
        enhanced (gap-filled) field is the reference.
    no_ascat_test_year : int or None
        An AMSR-E year without ASCAT (before 2007) that ``gapfill evaluate`` stratifies as
        the no-ASCAT test year (baselines and calibration fitted without it; the report
        says whether the model trained on it).  None: not evaluated.
    """

    sensor: str = "amsre"
    train_years: list[int] = field(default_factory=lambda: [2003, 2008])
    val_years: list[int] = field(default_factory=lambda: [2009, 2009])
    test_years: list[int] = field(default_factory=lambda: [2010, 2010])
    epochs: int = 10
    lr: float = 2e-3
    max_minutes: float = 3.0
    freeze_convlstm: bool = True
    matching: str = "meanstd"
    reference_years: list[int] = field(default_factory=lambda: [2013, 2020])
    no_ascat_test_year: int | None = 2005
    out: str = "model/checkpoints/amsre.pt"


#: YAML spellings of the period keys -> the config fields.
PERIOD_ALIASES = {"train_period": "train_years", "val_period": "val_years",
                  "test_period": "test_years", "reference_period": "reference_years"}
_YEAR = re.compile(r"^\d{4}$")


def _end(v: Any, last: bool, what: str) -> pd.Timestamp:
    """One end of a period: a year (its first or last day) or a day."""
    if isinstance(v, bool):
        raise ValueError(f"{what}: {v!r} is not a year or a day")
    if isinstance(v, int | np.integer) or (isinstance(v, str) and _YEAR.match(v.strip())):
        y = int(v)
        if not 1900 <= y <= 2200:
            raise ValueError(f"{what}: year {y} outside 1900..2200")
        return pd.Timestamp(f"{y}-12-31" if last else f"{y}-01-01")
    if isinstance(v, _dt.date | str | pd.Timestamp):
        text = v.isoformat() if isinstance(v, _dt.date) else str(v).strip()
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", text[:10]) or len(text) not in (10, 19):
            raise ValueError(f"{what}: {v!r} is not a year (YYYY) or a day (YYYY-MM-DD)")
        try:
            return pd.Timestamp(text[:10])
        except ValueError as exc:
            raise ValueError(f"{what}: {v!r} is not a valid day ({exc})") from None
    raise ValueError(f"{what}: {v!r} is not a year (YYYY) or a day (YYYY-MM-DD)")


def period_days(span, what: str = "period") -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day (inclusive) of a period ``[first, last]``.

    Each end is a year (``2013``: from 1 January, to 31 December) or a day
    (``2015-04-01``, a ``datetime.date`` as YAML reads it, or ISO text), so
    ``[2013, 2020]``, ``[2015-04-01, 2016-03-31]`` and ``[2015-04-01, 2016]`` all work.
    A single year or day stands for ``[it, it]``; text may be ``FIRST,LAST`` or
    :func:`period_label`'s ``FIRST..LAST``.  Raises ``ValueError`` naming ``what``.
    """
    if isinstance(span, str) and ("," in span or ".." in span):
        span = span.split("," if "," in span else "..")
    if not isinstance(span, list | tuple):
        span = [span, span]
    if len(span) != 2:
        raise ValueError(f"{what}: expected [first, last], got {span!r}")
    a, b = _end(span[0], False, what), _end(span[1], True, what)
    if b < a:
        raise ValueError(f"{what}: ends on {b:%Y-%m-%d}, before it starts ({a:%Y-%m-%d})")
    return a, b


def period_value(span, what: str = "period", path: str | Path | None = None) -> list:
    """A period as a config stores it: ``[first, last]`` with years as ints and days as
    ISO text (JSON-able in checkpoint metadata); :class:`FormatError` when invalid."""
    try:
        period_days(span, what)
    except ValueError as exc:
        raise FormatError(str(exc), path) from None
    if isinstance(span, str) and "," in span:
        span = span.split(",")
    if not isinstance(span, list | tuple):
        span = [span, span]
    out = []
    for v in span:
        if isinstance(v, str) and _YEAR.match(v.strip()):
            out.append(int(v))
        elif isinstance(v, _dt.date):
            out.append(v.isoformat()[:10])
        elif isinstance(v, str):
            out.append(v.strip()[:10])
        else:
            out.append(int(v))
    return out


def period_label(span) -> str:
    """``2022`` for a whole year, else ``2015-04-01..2015-06-30``."""
    a, b = period_days(span)
    if (a.month, a.day, b.month, b.day) == (1, 1, 12, 31) and a.year == b.year:
        return str(a.year)
    return f"{a:%Y-%m-%d}..{b:%Y-%m-%d}"


def _read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.exists():
        raise MissingFileError("config file not found", p)
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise FormatError(f"not valid YAML at {yaml_problem(exc)}", p) from exc
    if d is not None and not isinstance(d, dict):
        raise FormatError("expected a mapping of config keys", p)
    return d or {}
