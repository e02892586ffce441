"""AMSR Gap-Fill Explorer: the Panel app (served with ``panel serve app``)."""

import logging

_log = logging.getLogger("app")
if not _log.handlers:  # panel serve configures Bokeh's loggers only
    _h = logging.StreamHandler()
    _h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    _log.addHandler(_h)
    _log.setLevel(logging.INFO)
    _log.propagate = False
