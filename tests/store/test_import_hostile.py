"""Hostile import files: a NUL byte in a field, a truncated or damaged ``.csv.gz``."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import func, select

from geo311.store import tables as t
from geo311_web.cli import cli
from tests.conftest import LEGACY_CSV, csv_head

ROWS = 40


def _import(runner, path, *extra):
    return runner.invoke(cli, ["import", str(path), "--mapping", "chicago-311-legacy", *extra])


def _counts(app) -> tuple[int, int, int]:
    store = app.extensions["geo311"].store
    with store.engine.connect() as conn:
        return tuple(int(conn.execute(select(func.count()).select_from(table)).scalar())
                     for table in (t.service_requests, t.services, t.request_districts))


def _with_nuls(tmp_path, cells: dict[tuple[int, str], str]):
    """A legacy slice with some cells (line, column) replaced; the ids in those lines."""
    src = csv_head(LEGACY_CSV, tmp_path / "head.csv", ROWS)
    with open(src, newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    header = table[0]
    for (line, column), value in cells.items():
        table[line - 1][header.index(column)] = value
    out = tmp_path / "nul.csv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(table)
    return out, {table[line - 1][header.index("Service_Request_Number")] for line, _ in cells}


def test_a_nul_byte_rejects_its_line_with_the_column_and_the_rest_imports(runner, app, tmp_path):
    path, bad_ids = _with_nuls(tmp_path, {
        (5, "What_is_the_Nature_of_this_Code_Violation"): "rats\x00 in the alley",
        (12, "Street_Address"): "\x00",
    })
    rejects = tmp_path / "rejects.csv"
    result = _import(runner, path, "--rejects", rejects)
    assert result.exit_code == 0, result.output  # rejections never stop an import
    assert "Traceback" not in result.output
    assert ("rejected: line 5: What_is_the_Nature_of_this_Code_Violation contains a NUL byte"
            in result.output)
    assert "rejected: line 12: Street_Address contains a NUL byte" in result.output
    assert "rejected 2," in result.output
    assert rejects.read_text().splitlines()[1:] == [
        '5,"line 5: What_is_the_Nature_of_this_Code_Violation contains a NUL byte"',
        '12,"line 12: Street_Address contains a NUL byte"',
    ]
    store = app.extensions["geo311"].store
    stored = {r.external_id for r in store.requests.query(limit=1000)}
    assert len(stored) == store.requests.count() > 0
    assert not stored & bad_ids
    assert store.requests.count() + 2 + int(result.output.split("repeated ids in file ")[1].split()[0]) \
        == ROWS
    with store.engine.connect() as conn:
        texts = conn.execute(select(t.service_requests.c.description,
                                    t.service_requests.c.address)).all()
    assert len(texts) == len(stored)
    assert not any("\x00" in value for row in texts for value in row)


def _truncated(tmp_path):
    data = LEGACY_CSV.read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def _damaged(tmp_path):
    data = bytearray(LEGACY_CSV.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)  # zeros in the middle of the deflate stream
    path = tmp_path / "damaged.csv.gz"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("make", [_truncated, _damaged], ids=["truncated", "damaged"])
def test_a_broken_gzip_names_the_file_and_stores_nothing(runner, app, tmp_path, make):
    path = make(tmp_path)
    result = _import(runner, path)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a ClickException, not a crash
    assert f"Error: {path} is a truncated or damaged gzip file: " in result.output
    assert "Aborted!" not in result.output and "Traceback" not in result.output
    assert _counts(app) == (0, 0, 0)
