"""Composition root of the ``gapfill`` command line (each package registers its commands)."""
