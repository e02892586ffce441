"""The checkpoints a user may choose in the app, by label: the browser never sees a path.

Labels come from each checkpoint's metadata, read without torch
(:func:`model.checkpoint_file.read_metadata`), and are memoised per file and change time.
"""

from __future__ import annotations

import functools
import logging

from data_catalog.errors import GapfillError

log = logging.getLogger(__name__)


def checkpoint_choices() -> dict[str, tuple[str, str]]:
    """The checkpoints a user may choose: key -> (label, path on the server).

    Keys and labels go to the browser, paths never: key ``""`` is the default (the model of
    the date's radiometer), the others are the file stems in the checkpoint folder, and
    the labels come from each checkpoint's metadata ("AMSR2 base model (trained
    2013-2020)").  A checkpoint that fails verification is left out, with a log line.
    """
    from data_catalog import locations

    out = {"": ("default (the model of the date's radiometer)", "")}
    seen = {label for label, _ in out.values()}
    for p in sorted(locations.checkpoint_dir().glob("*.pt")):
        try:
            label = _checkpoint_label(str(p), p.stat().st_mtime)
        except (GapfillError, OSError) as exc:
            log.warning("checkpoint left out of the choices: %s", exc)
            continue
        if label in seen:  # two files with the same description
            label = f"{label} · {p.stem}"
        seen.add(label)
        out[p.stem] = (label, str(p))
    return out


@functools.lru_cache(maxsize=32)
def _checkpoint_label(path: str, mtime: float) -> str:
    from model.checkpoint_file import label, read_metadata  # no torch

    return label(read_metadata(path))
