"""Imports flag implausible dates: stored, marked on the request, counted in the summary."""

from datetime import UTC, datetime, timedelta

from geo311.imports import import_file, read_mapping
from geo311.intake import Context

MAPPING = """
name = "flags"
timezone = "America/Chicago"
[columns]
id = "ID"
service_name = "TYPE"
created = "OPENED"
lon = "LON"
lat = "LAT"
[dates]
format = "%Y-%m-%d"
earliest = "2011-01-01"
"""


def _csv(path, rows, lon=-87.6321, lat=41.8837):
    path.write_text("ID,TYPE,OPENED,LON,LAT\n" + "".join(
        f"{i},Graffiti Removal,{day},{lon},{lat}\n" for i, day in rows))
    return path


def test_dates_before_the_start_or_ahead_are_flagged_and_kept(layered_store, tmp_path):
    store = layered_store
    mapping_path = tmp_path / "flags.toml"
    mapping_path.write_text(MAPPING)
    ahead = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    source = _csv(tmp_path / "rows.csv", [("a", "2000-01-03"), ("b", "2010-12-31"),
                                          ("c", "2011-01-01"), ("d", "2013-06-30"),
                                          ("e", ahead)])
    summary = import_file(store, Context.from_store(store), source,
                          read_mapping(mapping_path))
    assert summary.stored == 5 and not summary.rejected
    assert dict(summary.flagged) == {"date_before_earliest": 2, "date_in_future": 1}
    assert any(line.startswith("flagged") and "2 date before earliest" in line
               and "1 date in future" in line for line in summary.lines())
    flags = {r.external_id: r.import_flags for r in store.requests.query(limit=10)}
    assert flags == {"a": "date_before_earliest", "b": "date_before_earliest", "c": "",
                     "d": "", "e": "date_in_future"}
    again = import_file(store, Context.from_store(store), source, read_mapping(mapping_path))
    assert again.stored == 0 and again.unchanged == 5
    assert {r.external_id: r.import_flags for r in store.requests.query(limit=10)} == flags


def test_a_mapping_without_earliest_flags_only_the_future(layered_store, tmp_path):
    mapping_path = tmp_path / "plain.toml"
    mapping_path.write_text(MAPPING.replace('earliest = "2011-01-01"\n', ""))
    source = _csv(tmp_path / "rows.csv", [("a", "2000-01-03")])
    summary = import_file(layered_store, Context.from_store(layered_store), source,
                          read_mapping(mapping_path))
    assert not summary.flagged
    assert layered_store.requests.query(limit=1)[0].import_flags == ""


def test_a_bad_earliest_is_a_clear_error(tmp_path):
    import pytest

    from geo311.errors import InvalidRequest

    path = tmp_path / "bad.toml"
    path.write_text(MAPPING.replace('"2011-01-01"', '"soon"'))
    with pytest.raises(InvalidRequest, match="earliest was 'soon'"):
        read_mapping(path)
