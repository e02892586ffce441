"""AMSR Gap-Fill Explorer: the Panel app (served with ``panel serve app``)."""
