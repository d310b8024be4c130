"""The geo311 command, driven through Click's runner against real databases."""

import zipfile

import geopandas as gpd
import pandas as pd
import pytest

from geo311_web.cli import cli
from tests.conftest import SAMPLE_2021_CSV, SHAPEFILES


def run(runner, *args):
    result = runner.invoke(cli, list(map(str, args)))
    return result


@pytest.mark.both_backends
def test_init_db_and_layers(runner):
    from geo311.store.tables import SCHEMA_VERSION

    assert f"schema version {SCHEMA_VERSION} ready" in run(runner, "init-db").output
    out = run(runner, "layers", "load", SHAPEFILES / "community_areas", "--name",
              "community_areas", "--id-field", "area_numbe", "--name-field", "community",
              "--role", "service_area")
    assert out.exit_code == 0, out.output
    assert "loaded community_areas version 1: 77 districts" in out.output
    listing = run(runner, "layers", "list").output
    assert "community_areas" in listing and "active" in listing
    shown = run(runner, "layers", "show", "community_areas").output
    assert "feature_count      77" in shown and "EPSG:4326" in shown


def test_layers_load_reads_ids_by_the_declared_rule(runner):
    """Boston's precincts ("0113": ward 1, precinct 13) loaded as its 22 wards."""
    precincts = SHAPEFILES / "boston/precincts_2012/boston_precincts_2012.gpkg"
    out = run(runner, "layers", "load", precincts, "--name", "wards", "--id-field",
              "WARD_PRECINCT", "--id-rule", r"regex:(\d\d)\d\d[A-Z]?", "--id-rule",
              "strip_zeros", "--role", "service_area")
    assert out.exit_code == 0, out.output
    assert "loaded wards version 1: 22 districts" in out.output
    assert out.output.count("-> dissolved") == 22
    assert "feature 1 (1): district delivered as 15 features" in out.output
    refused = run(runner, "layers", "load", precincts, "--name", "wards2", "--id-field",
                  "WARD_PRECINCT", "--id-rule", "guess")
    assert refused.exit_code == 1 and "step was 'guess'" in refused.output


def test_layer_load_errors_are_clean(runner, tmp_path):
    broken = tmp_path / "wards.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        for part in ("shp", "shx", "prj"):
            zf.write(SHAPEFILES / "wards_2023" / f"wards_2023.{part}", f"wards_2023.{part}")
    out = run(runner, "layers", "load", broken, "--name", "wards")
    assert out.exit_code == 1
    assert "Error:" in out.output and ".dbf" in out.output
    assert "Traceback" not in out.output


@pytest.mark.both_backends
def test_import_export_round_trip(runner, tmp_path):
    run(runner, "layers", "load", SHAPEFILES / "community_areas", "--name", "community_areas",
        "--id-field", "area_numbe", "--role", "service_area")
    out = run(runner, "import", SAMPLE_2021_CSV, "--mapping", "chicago-311", "--dedup",
              "--geocode", "missing")
    assert out.exit_code == 0, out.output
    assert "stored 5000, updated 0, unchanged 0, rejected 0" in out.output
    assert "duplicates: " in out.output and "since 2021-01-01 are in a group" in out.output
    assert "--geocode missing: 0 addresses geocoded; 0 could not be placed" in out.output
    dest = tmp_path / "out.csv"
    out = run(runner, "export", "requests", "--format", "csv", "--output", dest)
    assert "wrote 5000 requests" in out.output
    frame = pd.read_csv(dest, dtype=str)
    assert frame["external_id"].str.startswith("SR21-").all()
    assert "district_community_areas" in frame.columns
    # Filters and GeoParquet: the same rows as filtering the whole CSV.
    code = frame["service_code"].value_counts().index[0]
    parquet = tmp_path / "some.parquet"
    out = run(runner, "export", "requests", "--format", "parquet", "--output", parquet,
              "--service", code, "--district", "community_areas:8", "--district",
              "community_areas:32", "--from", "2021-01-01", "--to", "2021-01-02T12:00:00")
    assert out.exit_code == 0, out.output
    expected = frame[(frame["service_code"] == code)
                     & frame["district_community_areas"].isin(["8", "32"])
                     & (frame["requested_datetime"] <= "2021-01-02T12:00:00Z")]
    assert 0 < len(expected) < 5000
    assert f"wrote {len(expected)} requests to {parquet}" in out.output
    back = gpd.read_parquet(parquet)
    assert back["service_request_id"].astype(str).tolist() == expected[
        "service_request_id"].tolist()
    bad = run(runner, "export", "requests", "--output", tmp_path / "x.csv", "--district", "8")
    assert bad.exit_code == 2 and "is not LAYER:ID" in bad.output
    layer = run(runner, "export", "layer", "community_areas", "--format", "shp", "--output",
                tmp_path / "ca.zip")
    assert layer.exit_code == 0 and (tmp_path / "ca.zip").stat().st_size > 100_000


@pytest.mark.both_backends
def test_records_refresh_builds_what_import_left_stale(runner, app):
    run(runner, "layers", "load", SHAPEFILES / "community_areas", "--name", "community_areas",
        "--id-field", "area_numbe", "--role", "service_area")
    out = run(runner, "import", SAMPLE_2021_CSV, "--mapping", "chicago-311")
    assert "public records: 5000 built, 0 already current" in out.output, out.output
    out = run(runner, "records", "refresh")
    assert out.exit_code == 0 and "public records: 0 built, 5000 already current" in out.output
    run(runner, "layers", "load", SHAPEFILES / "wards_2023", "--name", "wards_2023",
        "--id-field", "ward")  # every record now lacks the new layer's ward
    out = run(runner, "records", "refresh")
    assert "public records: 5000 built, 0 already current" in out.output, out.output


def test_import_with_unknown_mapping_fails_cleanly(runner):
    out = run(runner, "import", SAMPLE_2021_CSV, "--mapping", "nowhere")
    assert out.exit_code == 1 and "nowhere" in out.output


@pytest.mark.both_backends
def test_demo_prepares_everything(runner, app, demo_output):
    """The README's first command, without serving (run once per session: ``demo_output``)."""
    assert demo_output.exit_code == 0, demo_output.output
    store = app.extensions["geo311"].store
    assert {v.layer for v in store.layers.versions(active_only=True)} == {
        "community_areas", "wards_2015_2023", "police_districts_2012"}
    assert store.requests.count() > 60_000
    # The legacy export's placeholder dates (2000-01-03) are stored, flagged and counted.
    from tests.conftest import LEGACY_CSV

    dates = pd.read_csv(LEGACY_CSV, usecols=["Creation_Date"])["Creation_Date"]
    early = int((pd.to_datetime(dates) < "2011-01-01").sum())
    assert early >= 1
    assert f"flagged (stored, marked on the request): {early} date before earliest" in \
        demo_output.output
    from datetime import UTC, datetime

    before = store.requests.query(end=datetime(2011, 1, 1, 5, tzinfo=UTC), limit=10_000)
    assert len(before) == early
    assert {r.import_flags for r in before} == {"date_before_earliest"}
    later = store.requests.query(start=datetime(2011, 1, 2, tzinfo=UTC), limit=200)
    assert {r.import_flags for r in later} == {""}
    again = run(runner, "demo", "--no-serve")
    assert "already loaded" in again.output and "stored 0," in again.output


def test_layer_of_a_geopackage_is_chosen_with_layer(runner, tmp_path):
    import geopandas as gpd

    gpkg = tmp_path / "two.gpkg"
    wards = gpd.read_file(SHAPEFILES / "wards_2023")
    wards.to_file(gpkg, layer="final", driver="GPKG")
    wards.head(3).to_file(gpkg, layer="draft", driver="GPKG")
    refused = run(runner, "layers", "load", gpkg, "--name", "wards", "--id-field", "ward")
    assert refused.exit_code == 1 and "--layer" in refused.output
    out = run(runner, "layers", "load", gpkg, "--name", "wards", "--id-field", "ward",
              "--layer", "draft")
    assert out.exit_code == 0 and "3 districts" in out.output


@pytest.mark.both_backends
def test_dedup_recompute_and_group_corrections(runner, app, tmp_path):
    import re

    from tests.conftest import LEGACY_CSV, csv_head

    run(runner, "layers", "load", SHAPEFILES / "community_areas", "--name", "community_areas",
        "--id-field", "area_numbe", "--role", "service_area")
    run(runner, "import", csv_head(LEGACY_CSV, tmp_path / "legacy.csv", 3000), "--mapping",
        "chicago-311-legacy")
    out = run(runner, "dedup", "--recompute")
    assert out.exit_code == 0, out.output
    found = re.search(r"(\d+) requests reclustered: (\d+) are duplicates in a group; "
                      r"(\d+) links changed", out.output)
    total, children, changed = map(int, found.groups())
    assert total > 2900 and 0 < children < total and changed == children
    assert "0 links changed" in run(runner, "dedup", "--recompute").output
    store = app.extensions["geo311"].store
    child = next(r for r in store.requests.query(limit=5000) if r.duplicate_of is not None)
    out = run(runner, "groups", "unmerge", child.id)
    assert out.exit_code == 0 and store.requests.get(child.id).duplicate_of is None
    out = run(runner, "groups", "move", child.id, "--into", child.duplicate_of)
    assert f"now in group {child.duplicate_of}" in out.output
    refused = run(runner, "groups", "unmerge", child.duplicate_of)
    assert refused.exit_code == 1 and "is not a duplicate" in refused.output
