"""The project's set-up promises: environment.yml agrees with pyproject.toml, README and CI."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

# conda-forge names that differ from PyPI names
CONDA_NAMES = {"torch": "pytorch", "netcdf4": "netcdf4"}
# PyPI-only packages are listed under environment.yml's `pip:` section
NAME_RE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$")


def _split(req: str) -> tuple[str, str]:
    m = NAME_RE.match(req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")


def _pyproject() -> dict[str, str]:
    """Runtime dependencies and the test extras (environment.yml lists both)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    return dict(_split(d) for d in deps)


def _environment() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    out: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for p in dep.get("pip", []):
                if not p.startswith("-e"):
                    name, spec = _split(p)
                    out[name] = spec
        else:
            name, spec = _split(dep)
            out[name] = spec
    return out


def test_environment_yml_lists_every_runtime_dependency_with_the_same_pins():
    env = _environment()
    missing, differing = [], []
    for name, spec in _pyproject().items():
        conda = CONDA_NAMES.get(name, name)
        if conda not in env:
            missing.append(name)
        elif env[conda] != spec:
            differing.append(f"{name}: pyproject {spec!r} vs environment.yml {env[conda]!r}")
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"
    assert not differing, differing


def test_environment_yml_has_nothing_pyproject_lacks():
    py = {CONDA_NAMES.get(n, n) for n in _pyproject()}
    # conda-only plumbing: the interpreter, pip itself, h5py (an extra of h5netcdf on PyPI)
    extra = set(_environment()) - py - {"python", "pip", "h5py"}
    assert not extra, f"in environment.yml but not pyproject.toml: {sorted(extra)}"


def test_known_pins_are_present():
    deps = _pyproject()
    assert deps["torch"] == "==2.13.0"
    assert deps["cartopy"].endswith("<0.26")
    assert deps["bokeh"].startswith(">=3.8.2")
    assert deps["tornado"].startswith(">=6.5.5")
    assert deps["panel"].startswith(">=1.9.4")
    raw = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(r.startswith("h5netcdf[h5py]") for r in raw)


def test_readme_shows_the_two_commands_first_and_ci_runs_make_test():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make serve" in first_block and "make test" in first_block
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_console_script_is_installed():
    """pyproject declares ``gapfill``, the installed distribution carries that entry point,
    and the ``gapfill`` script of this environment runs."""
    import importlib.metadata
    import shutil

    import gapfill.cli

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gapfill"] == "gapfill.cli:main"
    (ep,) = importlib.metadata.entry_points(group="console_scripts", name="gapfill")
    assert ep.value == "gapfill.cli:main" and ep.load() is gapfill.cli.main
    bindir = Path(sys.executable).parent  # the environment's scripts folder (.venv/bin)
    exe = shutil.which("gapfill", path=str(bindir))
    assert exe is not None, f"no gapfill script in {bindir}"
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("usage: gapfill")
    for command in ("train", "transfer", "predict", "build-series", "validate"):
        assert command in res.stdout, command


def test_readme_screenshot_is_a_png():
    """docs/screenshot.png (a good run's test-artifacts/app-demo.png, see the README) is a
    PNG that the README shows."""
    shot = REPO / "docs" / "screenshot.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/screenshot.png" in (REPO / "README.md").read_text(encoding="utf-8")
