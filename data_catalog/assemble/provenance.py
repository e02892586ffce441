"""Provenance of an assembled world: the command, the catalog entries, every file read.

The root attributes carry the command and the catalog entries (small); the ``provenance``
group of the store lists every file read with its role, source, day, size in bytes and
modification time (UTC), one row per file, since twenty years of daily files are too many
for attributes.  Nothing here records the wall-clock time of the run: a world resumed
after an interruption is identical to one built in one go.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

GROUP = "provenance"
FIELDS = ("path", "role", "source", "day", "size", "mtime")


def file_record(path: str | Path, role: str, source: str, day: str = "") -> dict:
    """Path, role, source, day, size (bytes) and modification time (ISO, UTC) of a file."""
    st = os.stat(path)
    mtime = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"path": str(path), "role": role, "source": source, "day": day,
            "size": int(st.st_size), "mtime": mtime}


def file_records(plan) -> list[dict]:
    """Every file the plan reads: daily files, H SAF cell and grid files, the land grid."""
    out = [file_record(path, p.role, p.source, day)
           for p in (*plan.amsr, plan.ascat) for day, path in p.days.items()]
    out += [file_record(path, "ascat", plan.ascat.source)
            for job in plan.cells for path in job.paths]
    if plan.ascat.grid_file and plan.cells:
        out.append(file_record(plan.ascat.grid_file, "ascat grid", plan.ascat.source))
    if plan.land_source.startswith("land grid "):
        path = plan.land_source[len("land grid "):].split(" (")[0]
        out.append(file_record(path, "land", "land_grid"))
    return out


def command(plan, out: str | Path, catalog: str | Path | None = None) -> str:
    """The ``gapfill assemble`` command that makes this world (normalised)."""
    w, s, e, n = plan.region
    parts = ["gapfill assemble", "--amsr " + ",".join(p.source for p in plan.amsr),
             f"--ascat {plan.ascat.source}", f"--region={w:g},{s:g},{e:g},{n:g}",
             f"--start {plan.start}", f"--end {plan.end}", f"--out {Path(out).absolute()}"]
    if catalog is not None:
        parts.append(f"--catalog {Path(catalog).absolute()}")
    return " ".join(parts)


def root_attrs(plan, out: str | Path, catalog: str | Path | None) -> dict:
    """Global attributes of the world (CF + provenance; deterministic)."""
    from data_catalog.assemble import hsaf
    from data_catalog.readers import lprm

    names = ", ".join(p.source for p in (*plan.amsr, plan.ascat))
    ascat = (f"H SAF cells: the grid point nearest each cell centre within "
             f"{hsaf.RADIUS_KM} km (pygeogrids), mean of the UTC day's observations that "
             f"pass the product's flags ({hsaf.FLAG_RULES})"
             if plan.ascat.kind == "hsaf_cells" else
             "CCI/C3S ACTIVE images, ASCAT sensor bits only, unflagged values")
    return {
        "title": f"AMSR Gap-Fill Explorer world assembled from {names}",
        "generator": "data_catalog.assemble",
        "version": plan.request()["version"],
        "parameters": json.dumps(plan.request(), sort_keys=True),
        "fingerprint": plan.inputs_fingerprint(),
        "command": command(plan, out, catalog),
        "catalog_entries": json.dumps([p.entry for p in (*plan.amsr, plan.ascat)],
                                      sort_keys=True),
        "region": json.dumps(list(plan.region)),
        "land_source": plan.land_source,
        "amsr_gap_rules": (f"LPRM: frequency_map fall-back to a higher band -> RFI; optical "
                           f"depth > {lprm.VOD_MAX} -> dense vegetation; ts < "
                           f"{lprm.FREEZING_K} K or mask bit {lprm.FROZEN_BIT} -> frozen; "
                           "no scantime -> no overpass. CCI/C3S: flag bits by flag_meanings, "
                           "AMSR-E/AMSR2 sensor bits only. Days without a file: no overpass."),
        "ascat_resampling": ascat,
        "files_read": len(plan.files),
        "bytes_in_files": int(sum(f["size"] for f in plan.files)),
        "provenance": f"group '{GROUP}': every file read with its size and modification time",
        "Conventions": "CF-1.10",
        "complete": False,
    }


def write_group(store: str | Path, plan) -> None:
    """The ``provenance`` group: one row per file (see module docstring)."""
    rows = plan.files
    cols = {k: [r[k] for r in rows] for k in FIELDS}
    ds = xr.Dataset(
        {k: ("file", np.array(cols[k], dtype=np.int64 if k == "size" else object))
         for k in FIELDS},
        attrs={"long_name": "files read to assemble this world",
               "size_units": "bytes", "mtime_units": "ISO 8601, UTC"},
    )
    ds.to_zarr(store, group=GROUP, mode="w", zarr_format=3, consolidated=False)


def read_group(store: str | Path) -> list[dict]:
    """The file records of a world's ``provenance`` group."""
    ds = xr.open_zarr(store, group=GROUP, consolidated=False).load()
    n = ds.sizes.get("file", 0)
    return [{k: (int(ds[k].values[i]) if k == "size" else str(ds[k].values[i]))
             for k in FIELDS} for i in range(n)]

