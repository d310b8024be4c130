"""The core never imports the web layer, Flask or folium; nothing imports a bare ``web``."""

import ast
import os
import re
import subprocess
import sys
import tomllib
from itertools import pairwise

from geo311.config import PROJECT_ROOT

#: The folder ``web/`` installs as ``geo311_web``; run from the checkout's root, it would
#: also import as a bare ``web``, which an installed geo311 does not have.
SCANNED = ("geo311", "web", "tests", "benchmarks")
DOCUMENTS = ("README.md", "benchmarks/README.md")
#: ``python -m web``, ``'web:create_app()'``, ``from web`` in prose and shell lines.
BARE_WEB_TEXT = re.compile(r"-m web\b|(?<![\w.])web:create_app|\bfrom web\b|\bimport web\b")


def test_core_imports_no_web_flask_or_folium():
    code = (
        "import sys, pkgutil, importlib, geo311\n"
        "for m in pkgutil.walk_packages(geo311.__path__, 'geo311.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules\n"
        "             if n.split('.')[0] in ('flask', 'folium', 'web', 'geo311_web'))\n"
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


def bare_web_uses(source: str, name: str = "<source>") -> list[str]:
    """Where ``source`` imports ``web`` or runs it: imports, ``-m web``, ``"web:..."``."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found += [f"{name}:{node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] == "web"]
        elif (isinstance(node, ast.ImportFrom) and node.level == 0
              and (node.module or "").split(".")[0] == "web"):
            found.append(f"{name}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.match(r"web[.:]\w", node.value):  # a module path or an app target
                found.append(f"{name}:{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.List | ast.Tuple):
            words = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            found += [f"{name}:{node.lineno}: -m web" for a, b in pairwise(words)
                      if a == "-m" and b == "web"]
    return sorted(found, key=lambda f: int(f.split(":")[1]))


def test_nothing_imports_a_bare_web():
    found = []
    for folder in SCANNED:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            rel = path.relative_to(PROJECT_ROOT).as_posix()
            found += bare_web_uses(path.read_text(encoding="utf-8"), rel)
    for rel in DOCUMENTS:
        for n, line in enumerate((PROJECT_ROOT / rel).read_text().splitlines(), 1):
            if BARE_WEB_TEXT.search(line):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == [], "\n".join(found)


def test_the_scan_finds_each_bare_web_form():
    source = ("import web\nimport web.cli as c\nfrom web import create_app\n"
              "from web.auth import actor\nimport importlib\n"
              "importlib.import_module('web.cli')\n"
              "cmd = [sys.executable, '-m', 'web', 'run']\n"
              "target = 'web:create_app()'\n")
    assert [f.split(":")[1] for f in bare_web_uses(source)] == [str(n) for n in range(1, 9)
                                                               if n != 5]
    allowed = ("import geo311_web\nfrom geo311_web.cli import cli\nfrom tests.web import x\n"
               "from . import web\nsource = 'web'\ncmd = ['-m', 'geo311_web']\n"
               "'''Served on the web: web pages.'''\n")
    assert bare_web_uses(allowed) == []
    assert BARE_WEB_TEXT.search("python -m web run") and BARE_WEB_TEXT.search("'web:create_app()'")
    assert not BARE_WEB_TEXT.search("gunicorn 'geo311_web:create_app()'; python -m geo311_web")


def test_geo311_web_imports_where_a_bare_web_does_not(tmp_path):
    """Away from the checkout's root, the installed name works and ``web`` is nobody's."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import geo311_web, geo311_web.cli\n"
            "assert geo311_web.create_app and geo311_web.cli.cli.name\n"
            "try:\n"
            "    import web\n"
            "except ModuleNotFoundError as exc:\n"
            "    print('no', exc.name)\n"
            "else:\n"
            "    print('found', web.__file__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "no web"


def test_every_package_folder_is_installed_under_its_name():
    """``[tool.setuptools] packages`` lists each folder with an ``__init__.py``, renamed."""
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["geo311_web"] == "web"
    prefix = {"geo311": "geo311", "web": "geo311_web"}
    found = {".".join([prefix[init.parent.relative_to(PROJECT_ROOT).parts[0]],
                       *init.parent.relative_to(PROJECT_ROOT).parts[1:]])
             for top in prefix for init in (PROJECT_ROOT / top).rglob("__init__.py")}
    assert found | {"geo311_data"} == set(config["packages"])
    assert config["package-dir"]["geo311_data"] == "."
