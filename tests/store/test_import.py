"""Bulk import from the City's real exports, on both backends."""

import gzip

import pandas as pd
import pytest

from geo311.errors import InvalidRequest
from geo311.imports import import_file, read_mapping
from tests.conftest import LEGACY_CSV, SAMPLE_2021_CSV, csv_head

LEGACY = read_mapping("chicago-311-legacy")
CURRENT = read_mapping("chicago-311")


def test_legacy_sample_imports_with_districts(layered_store, ctx, tmp_path):
    src = csv_head(LEGACY_CSV, tmp_path / "legacy.csv", 3000)
    summary = import_file(layered_store, ctx, src, LEGACY)
    assert summary.rows_read == 3000
    assert summary.rejected == []
    assert summary.stored + summary.repeated_in_file == 3000
    assert layered_store.requests.count() == summary.stored
    assert "SCB" in summary.services_created
    source = pd.read_csv(src, dtype=str)
    exported = {
        r.external_id: r for r in layered_store.requests.query(limit=5000)
    }
    agree = total = 0
    for row in source.drop_duplicates("Service_Request_Number", keep="last").itertuples():
        r = exported[row.Service_Request_Number]
        if pd.isna(row.Community_Area) or r.lon is None:
            continue
        total += 1
        agree += r.districts["community_areas"] == str(int(float(row.Community_Area)))
    assert total > 2900
    assert agree / total >= 0.98, f"community area agreement {agree / total:.4f}"
    one = layered_store.requests.get_by_external_id(source["Service_Request_Number"].iloc[0])
    assert one.requested_datetime.isoformat() == "2000-01-03T06:00:00+00:00"  # local midnight
    assert one.status == "closed" and one.status_notes == "Completed"


def test_reimport_is_idempotent_and_picks_up_changes(layered_store, ctx, tmp_path):
    src = csv_head(LEGACY_CSV, tmp_path / "legacy.csv", 500)
    first = import_file(layered_store, ctx, src, LEGACY)
    again = import_file(layered_store, ctx, src, LEGACY)
    assert again.stored == 0 and again.updated == 0
    assert again.unchanged == first.stored
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    target = frame["Service_Request_Number"].iloc[10]
    frame.loc[10, "Status"] = "Open - Dup"
    frame.to_csv(src, index=False)
    third = import_file(layered_store, ctx, src, LEGACY)
    assert third.updated == 1 and third.stored == 0
    assert layered_store.requests.get_by_external_id(target).status == "open"
    assert layered_store.requests.count() == first.stored


def test_2021_sample_keeps_parents_services_and_times(layered_store, ctx):
    summary = import_file(layered_store, ctx, SAMPLE_2021_CSV, CURRENT)
    assert summary.rows_read == 5000 and summary.rejected == []
    assert summary.stored == 5000
    codes = {s.code for s in layered_store.catalogue.services()}
    assert {"SCB", "311IOC", "PHF"} <= codes
    first = layered_store.requests.get_by_external_id("SR21-00000001")
    assert first.requested_datetime.isoformat() == "2021-01-01T06:00:09+00:00"
    assert first.districts["community_areas"] == "28"
    assert first.districts["wards_2015_2023"] == "28"
    # aircraft-noise calls sit at a placeholder address outside the city: kept, flagged
    assert summary.outside_service_area > 0
    assert summary.unassigned["community_areas"] == summary.outside_service_area


BAD_ROWS = """\
Creation_Date,Status,Completion_Date,Service_Request_Number,Type_of_Service_Request,What_is_the_Nature_of_this_Code_Violation,Street_Address,ZIP_Code,X_Coordinate,Y_Coordinate,Ward,Police_District,Community_Area,Latitude,Longitude,Location
2012-05-01,Completed,2012-05-03,12-00000001,Sanitation Code Violation,Other,4853 S WOOD,,,,20,9,61,41.80576,-87.66975,
2012-05-01,Completed,2012-05-03,12-00000002,Sanitation Code Violation,Other,4853 S WOOD
2012-13-45,Completed,2012-05-03,12-00000003,Sanitation Code Violation,Other,4853 S WOOD,,,,20,9,61,41.80576,-87.66975,
2012-05-01,Completed,2012-05-03,12-00000004,Sanitation Code Violation,Other,4853 S WOOD,,,,20,9,61,141.8,-87.66975,
2012-05-01,Finished,2012-05-03,12-00000005,Sanitation Code Violation,Other,4853 S WOOD,,,,20,9,61,41.80576,-87.66975,
2012-05-01,Completed,2012-05-03,12-00000006,Sanitation Code Violation,"Other, with a
line break",4853 S WOOD,,,,20,9,61,41.80576,north,
2012-05-01,Completed,2012-05-03,12-00000007,Sanitation Code Violation,Other,1 MAIN ST,,,,,,,40.7128,-74.0060,
2012-05-01,Completed,2012-05-03,12-00000008,Sanitation Code Violation,Other,4853 S WOOD,,1165166.5,1872509.0,20,9,61,,,
2012-05-01,Completed,2012-05-03,12-00000009,Sanitation Code Violation,Other,NO COORDS,,,,20,9,61,,,
"""


def test_bad_rows_are_reported_by_line_and_do_not_stop_the_import(layered_store, ctx, tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text(BAD_ROWS)
    existing = import_file(layered_store, ctx, csv_head(LEGACY_CSV, tmp_path / "h.csv", 50),
                           LEGACY)
    summary = import_file(layered_store, ctx, src, LEGACY)
    reasons = dict(summary.rejected)
    assert reasons[3] == "line 3: has 7 fields but the header has 16"
    assert "line 4: Creation_Date '2012-13-45' is not a date" in reasons[4]
    assert "line 5: impossible coordinates" in reasons[5] and "141.8" in reasons[5]
    assert "line 6: Status 'Finished' is not in the mapping's [status] table" in reasons[6]
    assert reasons[7] == "line 7: Longitude 'north' is not a number"
    assert len(summary.rejected) == 5
    assert summary.stored == 4
    assert summary.outside_service_area == 1  # New York, kept and flagged
    assert summary.without_location == 1
    from_xy = layered_store.requests.get_by_external_id("12-00000008")
    assert (from_xy.lon, from_xy.lat) == pytest.approx((-87.66975, 41.80576), abs=2e-5)
    assert from_xy.districts["community_areas"] == "61"
    nowhere = layered_store.requests.get_by_external_id("12-00000009")
    assert nowhere.lon is None and nowhere.geocode_match == "none"
    assert layered_store.requests.count() == existing.stored + 4


def test_missing_required_column_names_it(layered_store, ctx, tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("Status,Street_Address\nCompleted,1 W MADISON\n")
    with pytest.raises(InvalidRequest, match="Service_Request_Number"):
        import_file(layered_store, ctx, src, LEGACY)
    assert layered_store.requests.count() == 0


def test_not_a_csv_is_refused(layered_store, ctx, tmp_path):
    src = tmp_path / "x.csv"
    src.write_bytes(gzip.compress(b"\x00\xff\xfe garbage"))
    with pytest.raises(InvalidRequest, match="x.csv"):
        import_file(layered_store, ctx, src, LEGACY)


def test_import_with_dedup_uses_the_mappings_rule(layered_store, ctx, tmp_path):
    src = csv_head(LEGACY_CSV, tmp_path / "legacy.csv", 4000)
    summary = import_file(layered_store, ctx, src, LEGACY, dedup=True)
    rule = layered_store.catalogue.service("SCB").duplicate_rule
    assert (rule.radius_m, rule.window_days, rule.only_open) == (0, 3, True)
    requests = {r.id: r for r in layered_store.requests.query(limit=5000)}
    children = [r for r in requests.values() if r.duplicate_of is not None]
    assert len(children) == summary.duplicates > 0
    for child in children:
        root = requests[child.duplicate_of]
        assert (child.lon, child.lat) == (root.lon, root.lat)
        assert root.requested_datetime <= child.requested_datetime
    for root_id in {c.duplicate_of for c in children}:
        members = sum(c.duplicate_of == root_id for c in children)
        assert requests[root_id].reporter_count == 1 + members
