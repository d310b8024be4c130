"""The store's shape: one dialect per backend knows the database; modules a reader can hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The only modules that may know which database they talk to.
DIALECT_MODULES = {"geo311/store/postgis.py", "geo311/store/spatialite.py",
                   # SQLAlchemy hands a column type its driver's dialect: SQLite wants naive UTC.
                   "geo311/store/schema_types.py"}
#: Modules allowed past 600 lines (none: split by what the parts do instead).
TOO_BIG_FOR_NOW: set[str] = set()
BACKEND_CHECK = re.compile(
    r"dialect(\.name)?\s*(==|!=)|\bif\s+[\w.]*dialect\b|\bbackend\s*(==|!=)"
    r"|(==|!=|\bin)\s*\(?[\"'](postgis|postgresql|sqlite|spatialite)[\"']")


def _modules() -> list[Path]:
    return sorted(p for folder in ("geo311", "web") for p in (ROOT / folder).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_only_the_dialects_ask_which_database_it_is():
    found = [f"{_rel(p)}:{n}: {line.strip()}" for p in _modules()
             if _rel(p) not in DIALECT_MODULES
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if BACKEND_CHECK.search(line)]
    assert found == []


def test_the_check_finds_a_backend_test_where_there_is_one():
    assert BACKEND_CHECK.search('if engine.dialect.name == "postgresql":')
    assert BACKEND_CHECK.search('if store.backend == "postgis":')
    assert not BACKEND_CHECK.search("return store.backend")


def test_no_module_over_600_lines_and_no_class_over_40_methods():
    long_modules, big_classes = [], []
    for path in _modules():
        rel = _rel(path)
        if rel in TOO_BIG_FOR_NOW:
            continue
        text = path.read_text()
        if len(text.splitlines()) > 600:
            long_modules.append(rel)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                methods = [f for f in node.body
                           if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
                if len(methods) > 40:
                    big_classes.append(f"{rel}:{node.name} ({len(methods)})")
    assert long_modules == [] and big_classes == []


def test_the_store_imports_no_service():
    services = {"intake", "dispatch", "sla", "layers", "imports", "open311", "ogc",
                "accounts", "catalogue", "export", "gazetteer", "geocoder", "kpi",
                "open311_records", "reports", "remote"}
    found = []
    for path in sorted((ROOT / "geo311/store").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "geo311" and len(parts) > 1 and parts[1] in services:
                    found.append(f"{_rel(path)}: {name}")
    assert found == []
