"""A checkpoint as a file: its archive verified and its metadata read, without torch.

``torch.save`` writes a zip archive: ``<name>/data.pkl`` holds the structure of the saved
object, one member per tensor storage holds the numbers, and the archive records a CRC-32
of every member.  ``torch.load`` reads the members without checking those CRCs, so bytes
flipped in the weights load silently; :func:`check_archive` checks them.

:func:`read_metadata` unpickles ``data.pkl`` with a restricted unpickler that builds plain
containers only (every tensor becomes ``None``; no other global is ever imported), so the
app can label checkpoints (:func:`label`) without importing torch.
"""

from __future__ import annotations

import io
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any

from data_catalog.errors import FormatError, MissingFileError

#: what a checkpoint of this project says it is (``blob["format"]``)
CHECKPOINT_FORMAT = "amsr-gapfill-convlstm/1"
SENSOR_LABELS = {"amsr2": "AMSR2", "amsre": "AMSR-E"}


def check_archive(path: str | Path) -> None:
    """Raise a one-line :class:`FormatError` naming ``path`` unless it is a zip archive
    whose every member matches its recorded CRC-32."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError("checkpoint not found", path)
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                head = f.read(24)
            raise FormatError("not a checkpoint: expected the zip archive that torch.save "
                              f"writes, found a file starting {_head(head)}", path)
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except FormatError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            ValueError, NotImplementedError) as exc:
        raise FormatError(f"damaged checkpoint archive ({_one_line(exc)})", path) from None
    if bad is not None:
        raise FormatError(f"damaged checkpoint: member {bad} fails its CRC-32 check (the "
                          "file changed after it was written)", path)


class _Unpickler(pickle.Unpickler):
    """Plain containers only: torch's tensor and storage rebuilders become stubs."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        if (module, name) == ("_codecs", "encode"):  # bytes in pickle protocol 2
            import codecs

            return codecs.encode
        if module == "torch" or module.startswith("torch."):
            return _stub
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid):
        return None


def _stub(*args, **kwargs) -> None:
    return None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``metadata`` of a checkpoint written by :meth:`model.wrapper.GapFiller.save`.

    Raises
    ------
    FormatError
        Not a verified archive (:func:`check_archive`), or not a checkpoint of this project.
    """
    path = Path(path)
    check_archive(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith("data.pkl")]
            if len(names) != 1:
                raise FormatError("not a torch checkpoint archive (no single data.pkl)", path)
            blob = _Unpickler(io.BytesIO(zf.read(names[0]))).load()
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a format problem
        raise FormatError(f"unreadable checkpoint ({_one_line(exc)})", path) from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT \
            or not isinstance(blob.get("metadata"), dict):
        raise FormatError(f"not a {CHECKPOINT_FORMAT} checkpoint", path)
    return blob["metadata"]


def label(meta: dict[str, Any]) -> str:
    """A reader's name for a checkpoint, from its metadata, e.g. "AMSR2 base model
    (trained 2013-2020)" or "AMSR-E transferred from AMSR2 (trained 2003-2008)"."""
    sensor = str(meta.get("sensor", "amsr2"))
    name = SENSOR_LABELS.get(sensor, sensor)
    parent = meta.get("parent") or {}
    if parent:
        psensor = str(parent.get("sensor", ""))
        text = f"{name} transferred" + (f" from {SENSOR_LABELS.get(psensor, psensor)}"
                                        if psensor else "")
    else:
        text = f"{name} base model"
    period = (meta.get("training") or {}).get("period") or []
    if len(period) == 2 and all(isinstance(p, str) and len(p) >= 4 for p in period):
        text += f" (trained {period[0][:4]}-{period[1][:4]})"
    return text


def _head(data: bytes) -> str:
    text = data.decode("latin-1")
    return repr(" ".join(text.split()))[:40] if data else "empty"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 120 else text[:119] + "…"
