"""``gapfill assemble``: a user's own LPRM, CCI/C3S and H SAF downloads -> a canonical world.

The output is a zarr store in exactly the form of the demo world (variables ``amsr_sm``,
``gap_mask``, ``ascat_sm``, ``land``, the ``sensor(time)`` coordinate, units, CF
attributes and chunking; no ``truth_sm``) on the 0.25 degree cells of a region, with a
complete daily time axis (days without a file are all ``no_overpass``) and provenance:
the catalog entries, every file read with its size and modification time (the
``provenance`` group), and the command.

One job per module:

``plan``
    catalog sources -> dated files, the target grid, the land mask, the blocks of days,
    fingerprints; every input check that can fail early fails here.
``days``
    one day of one product (LPRM, CCI/C3S PASSIVE or ACTIVE image) on the target grid,
    with its gap categories.
``hsaf``
    H SAF ASCAT ragged cells: the nearest grid point of each cell centre (pygeogrids), the
    product's quality and frozen/snow flags, daily means.
``store``
    the world store: template, block writes, completion, opening.
``provenance``
    file records, the command, the catalog entries.
``runner``
    the work folder, resumption, running blocks on Dask, the progress bar.
``cli``
    the ``gapfill assemble`` subcommand.
"""

from __future__ import annotations

from data_catalog.assemble.runner import assemble
from data_catalog.assemble.store import open_assembled

__all__ = ["assemble", "open_assembled"]
