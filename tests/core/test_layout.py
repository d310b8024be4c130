"""The core never imports the web layer, Flask or folium."""

import subprocess
import sys

from geo311.config import PROJECT_ROOT


def test_core_imports_no_web_flask_or_folium():
    code = (
        "import sys, pkgutil, importlib, geo311\n"
        "for m in pkgutil.walk_packages(geo311.__path__, 'geo311.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('flask', 'folium', 'web'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PROJECT_ROOT, check=True)
    assert out.stdout.strip() == "", f"geo311 pulled in {out.stdout.strip()}"


def test_every_core_module_was_walked():
    names = {p.stem for p in (PROJECT_ROOT / "geo311").glob("*.py")}
    names |= {p.parent.name for p in (PROJECT_ROOT / "geo311").glob("*/__init__.py")}
    assert {"intake", "imports", "districts", "boundaries", "geocoding", "export"} <= names


def test_import_contracts_hold():
    """The layers and forbidden imports of ``[tool.importlinter]`` in pyproject.toml."""
    out = subprocess.run([sys.executable, "-c",
                          "import sys; from importlinter.cli import lint_imports_command; "
                          "sys.exit(lint_imports_command())"],
                         capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout and "2 kept" in out.stdout
