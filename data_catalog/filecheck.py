"""Whether a data file opens: a present but truncated or damaged file is not "available".

The checks read headers only (HDF5/netCDF-4 superblock and end-of-file address, the
netCDF classic header and variable extents, zip CRCs, zarr metadata), so listing a catalog
stays quick.  Formats without a header worth checking (text, CSV) count as readable.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def problem(path: str | Path) -> str:
    """``""`` when ``path`` opens, else one line saying what is wrong with it."""
    p = Path(path)
    try:
        if p.is_dir():
            return _zarr_problem(p) if _is_zarr(p) else ""
        with open(p, "rb") as f:
            head = f.read(8)
        if head.startswith(HDF5_SIGNATURE):
            import h5py

            with h5py.File(p, "r"):
                pass
        elif head[:3] == b"CDF":
            from scipy.io import netcdf_file

            # reads the header and every fixed-size variable: a short file fails here
            with netcdf_file(p, "r", mmap=False):
                pass
        elif head[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(p) as zf:
                bad = zf.testzip()
            if bad is not None:
                return f"{p}: member {bad} fails its CRC-32 check"
    except Exception as exc:  # noqa: BLE001 - any failure to open is the answer
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return f"{p}: cannot be opened ({first})"
    return ""


def first_problem(paths: Iterable[str | Path]) -> str:
    """The problem of the first file of ``paths`` that does not open, or ``""``."""
    for path in paths:
        why = problem(path)
        if why:
            return why
    return ""


def _is_zarr(p: Path) -> bool:
    return any((p / name).exists() for name in ("zarr.json", ".zgroup", ".zarray"))


def _zarr_problem(p: Path) -> str:
    import zarr

    zarr.open_group(p, mode="r") if not (p / ".zarray").exists() else zarr.open_array(p, mode="r")
    return ""
