"""The rejects file an import writes for the sender of the data."""

import csv

from geo311.imports import write_rejects


def test_rejects_are_a_csv_of_line_and_reason_with_quotes_kept(tmp_path):
    path = tmp_path / "rejects.csv"
    write_rejects(path, [(3, 'created was "yesterday"'), (7, "no id, no date")])
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["line", "reason"], ["3", 'created was "yesterday"'],
                    ["7", "no id, no date"]]
