"""The input files of an assembly: does a file start like netCDF, and short digests.

Shared by the planner (:mod:`data_catalog.assemble.plan`) and the H SAF cells
(:mod:`data_catalog.assemble.hsaf`), which import it rather than each other.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from data_catalog.errors import FormatError, MissingFileError

#: first bytes of the formats the readers open: HDF5 (netCDF-4) and netCDF classic
SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def check_signature(path: str | Path) -> None:
    """Raise :class:`FormatError` unless the file starts like netCDF-4/HDF5 or classic."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise MissingFileError(f"cannot read the file ({exc.strerror})", p) from None
    if any(head.startswith(s) for s in SIGNATURES):
        return
    if not head:
        raise FormatError("empty file (an interrupted download?); download it again or "
                          "delete it (that day becomes a swath gap)", p)
    text = head.lstrip().lower()
    what = "an HTML page (a login or error page saved instead of the data?)" \
        if text.startswith((b"<!doctype html", b"<html", b"<?xml")) else \
        f"not netCDF (it starts with {head[:8]!r})"
    raise FormatError(f"{what}; download it again or delete it (that day becomes a swath "
                      "gap)", p)
