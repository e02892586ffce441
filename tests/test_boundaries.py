"""Import boundaries of the house style, proved in fresh interpreters.

``data_catalog``, ``model`` and ``validation`` never import Panel, Bokeh or HoloViews;
``app`` never imports torch at start-up.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name}")
            return None

    BLOCKED = set(sys.argv[2].split(","))
    sys.meta_path.insert(0, Block())
    pkg = importlib.import_module(sys.argv[1])
    skip = set(sys.argv[3].split(",")) if len(sys.argv) > 3 and sys.argv[3] else set()
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if info.name not in skip:
            importlib.import_module(info.name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("ok")
    """
)


def _run(package: str, blocked: str, skip: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, package, blocked, skip], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("package", ["data_catalog", "model", "validation"])
def test_compute_packages_import_without_panel_bokeh_holoviews(package):
    res = _run(package, "panel,bokeh,holoviews,geoviews,hvplot")
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]


def test_data_catalog_and_validation_import_without_torch():
    for package in ("data_catalog", "validation"):
        res = _run(package, "torch")
        assert res.returncode == 0, res.stderr[-3000:]


def test_app_imports_without_torch():
    # app.main builds the page and is exercised by the browser tests; every other app module
    # (state, plots, views) must import without torch
    res = _run("app", "torch", skip="app.main")
    assert res.returncode == 0, res.stderr[-3000:]


def test_the_blocker_itself_works():
    # the harness must be able to fail: a package that does import a blocked module
    res = _run("json", "json")
    assert res.returncode != 0
