"""A non-editable install runs ``geo311 demo`` away from the checkout, with what it ships.

How it is installed, without the network and without installing the dependencies again:

1. The files a build reads (``pyproject.toml``, ``README.md``, ``geo311/``, ``web/``,
   ``layers/``, ``shapefiles/``) are copied to a temporary folder and built into a wheel
   there (``pip wheel --no-build-isolation``, with the dev group's setuptools), so the
   checkout is neither read at run time nor written to.
2. A fresh venv (``python -m venv --without-pip``) gets the wheel from this interpreter's
   pip (``pip --python X/bin/python install --no-deps --no-index``).
3. A ``.pth`` file in the venv's site-packages names this interpreter's site-packages, so
   the dependencies import from there, after the venv's own packages. A ``.pth`` line is a
   plain ``sys.path`` entry: the ``.pth`` files of that folder (this environment's editable
   install among them) are not run, so ``geo311``, ``geo311_web`` and ``geo311_data``
   come from the wheel.

Then ``X/bin/geo311`` runs from a temporary working directory that is not the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from geo311.config import PROJECT_ROOT
from geo311.store import open_store

pytestmark = pytest.mark.slow

#: What a build reads, and the folders whose every file the wheel must carry.
BUILD_FILES = ("pyproject.toml", "README.md")
BUILD_FOLDERS = ("geo311", "web", "layers", "shapefiles")
#: Folder in the checkout -> where its files sit in the wheel.
SHIPPED = {"web/templates": "geo311_web/templates", "web/static": "geo311_web/static",
           "layers": "geo311_data/layers", "shapefiles": "geo311_data/shapefiles",
           "geo311/mappings": "geo311/mappings", "geo311/catalogues": "geo311/catalogues",
           "geo311/calendars": "geo311/calendars"}
#: The rows of the two shipped request samples (as ``tests/browser/test_demo.py``).
DEMO_REQUESTS = 55_167 + 5_000
DEMO_ACTIVE = {"community_areas", "wards_2015_2023", "police_districts_2012"}


def _run(args: list[str | Path], cwd: Path, env: dict[str, str],
         timeout_s: float) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout_s)
    assert out.returncode == 0, f"{args}:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv outside the checkout with geo311 installed from a wheel; its bin folder."""
    root = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith("GEO311_")}
    src = root / "src"
    src.mkdir()
    for name in BUILD_FILES:
        shutil.copy(PROJECT_ROOT / name, src / name)
    for name in BUILD_FOLDERS:
        shutil.copytree(PROJECT_ROOT / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = root / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", wheels, src], root, env, 300)
    (wheel,) = wheels.glob("geo311-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], root, env, 120)
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
          "--no-deps", "--no-index", "-q", wheel], root, env, 300)
    (venv_site,) = (venv / "lib").glob("python3*/site-packages")
    (venv_site / "geo311_dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    work = root / "work"  # the working directory: not the checkout, nothing in it
    work.mkdir()
    return wheel, venv / "bin", work, env


def test_the_wheel_carries_every_shipped_file(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f"{folder}/{rel}" for folder, target in SHIPPED.items()
               for path in sorted((PROJECT_ROOT / folder).rglob("*")) if path.is_file()
               and "__pycache__" not in path.parts
               for rel in [path.relative_to(PROJECT_ROOT / folder).as_posix()]
               if f"{target}/{rel}" not in names]
    assert missing == []
    assert {"geo311_data/layers/wards_2023.toml", "geo311_web/templates/index.html",
            "geo311/py.typed"} <= names
    assert not any(n.startswith(("web/", "tests/", "benchmarks/")) for n in names)


def test_installed_geo311_web_imports_and_bare_web_does_not(installed):
    _, bin_, work, env = installed
    code = ("import geo311, geo311_web, geo311.config as c\n"
            "print(geo311_web.__file__); print(geo311.__file__); print(c.SHIPPED_ROOT)\n"
            "try:\n    import web\nexcept ModuleNotFoundError:\n    print('no web')\n")
    lines = _run([bin_ / "python", "-c", code], work, env, 60).stdout.splitlines()
    venv = bin_.parent.resolve()
    assert [Path(p).resolve().is_relative_to(venv) for p in lines[:3]] == [True] * 3, lines
    assert Path(lines[2]).name == "geo311_data"
    assert lines[3] == "no web"


def test_installed_demo_loads_the_shipped_city(installed, tmp_path):
    _, bin_, work, env = installed
    started = time.monotonic()
    out = _run([bin_ / "geo311", "demo", "--no-serve"], work, env, 900).stdout
    took_s = time.monotonic() - started
    url = re.search(r"^database: (\S+)$", out, re.M)
    assert url and url[1].startswith("sqlite:///"), out
    db = Path(url[1].removeprefix("sqlite:///"))
    assert db.resolve().is_relative_to(bin_.parent.resolve())  # the install's instance folder
    listed = _run([bin_ / "geo311", "layers", "list"], work, env, 120).stdout
    shipped = {p.stem for p in (PROJECT_ROOT / "layers").glob("*.toml")}
    assert {line.split()[0] for line in listed.splitlines()} == shipped
    assert {line.split()[0] for line in listed.splitlines() if " active " in line} \
        == DEMO_ACTIVE
    store = open_store(url[1])
    try:
        assert store.requests.count() == DEMO_REQUESTS
    finally:
        store.engine.dispose()
    print(f"installed demo: {took_s:.0f} s")


def test_installed_app_serves_pages_and_static_files(installed, tmp_path):
    """Templates and static files are found inside the installed package."""
    _, bin_, work, env = installed
    env = {**env, "GEO311_DATABASE_URL": f"sqlite:///{tmp_path / 'pages.sqlite'}"}
    _run([bin_ / "geo311", "init-db"], work, env, 120)
    code = ("from geo311_web import create_app\n"
            "app = create_app()\n"
            "c = app.test_client()\n"
            "page = c.get('/')\n"
            "css = c.get('/static/vendor/leaflet/leaflet.css')\n"
            "print(page.status_code, css.status_code, app.root_path)\n")
    out = _run([bin_ / "python", "-c", code], work, env, 120).stdout.split()
    assert out[:2] == ["200", "200"], out
    assert Path(out[2]).resolve().is_relative_to(bin_.parent.resolve())
