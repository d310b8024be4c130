"""Exports: one row per request, a district column per active layer, no personal data."""

import zipfile

import pandas as pd
import pyogrio
import pytest

from geo311.boundaries.reading import read_layer
from geo311.errors import InvalidRequest, NotFound
from geo311.export import export_layer, export_requests
from geo311.intake import submit
from geo311.model import NewRequest, Reporter

REQUIRED = ["service_request_id", "external_id", "service_code", "service_name", "status",
            "requested_datetime", "closed_datetime", "address", "lat", "long",
            "geocode_match", "duplicate_of"]
SECRETS = ("Zed", "Quill", "zed@example.org", "773-555-0199", "device-42", "acct-42")


@pytest.fixture
def seeded(layered_store, ctx):
    from geo311.model import Service

    layered_store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    for i in range(3):
        submit(layered_store, ctx, NewRequest(
            "SCB", lon=-87.6298, lat=41.8781 + i * 0.01, address=f"{100 + i} W MADISON ST",
            description="bags in the alley",
            reporter=Reporter("Zed", "Quill", "zed@example.org", "773-555-0199", "device-42",
                              "acct-42")))
    return layered_store


def test_csv_has_contract_columns_and_no_personal_data(seeded, tmp_path):
    out = tmp_path / "requests.csv"
    assert export_requests(seeded, out, "csv") == 3
    text = out.read_text()
    for secret in SECRETS:
        assert secret not in text
    frame = pd.read_csv(out, dtype=str)
    assert REQUIRED == [c for c in frame.columns if c in REQUIRED]
    assert {"district_community_areas", "district_wards_2015_2023"} <= set(frame.columns)
    assert frame["district_community_areas"].tolist() == ["32", "8", "8"]
    assert frame["requested_datetime"].str.endswith("Z").all()


def test_private_export_carries_reporters(seeded, tmp_path):
    out = tmp_path / "private.csv"
    export_requests(seeded, out, "csv", include_private=True)
    frame = pd.read_csv(out, dtype=str)
    assert (frame["reporter_email"] == "zed@example.org").all()


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_spatial_formats_read_back(seeded, tmp_path, fmt):
    out = tmp_path / f"requests.{fmt}"
    export_requests(seeded, out, fmt)
    back = pyogrio.read_dataframe(out)
    assert len(back) == 3
    assert back.crs.to_epsg() == 4326
    assert back.geometry.y.round(4).tolist() == [41.8781, 41.8881, 41.8981]
    assert not {"reporter_email", "reporter_first_name", "reporter_phone"} & set(back.columns)
    assert "zed@example.org" not in back.to_string()


def test_empty_export_is_an_error_and_writes_nothing(store, tmp_path):
    out = tmp_path / "none.csv"
    with pytest.raises(InvalidRequest, match="no requests"):
        export_requests(store, out, "csv")
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["shp", "geojson", "gpkg"])
def test_layer_export_round_trips(layered_store, tmp_path, fmt):
    out = tmp_path / f"wards.{'zip' if fmt == 'shp' else fmt}"
    n = export_layer(layered_store, "wards_2015_2023", out, fmt)
    assert n == 50
    if fmt == "shp":
        assert {".shp", ".shx", ".dbf", ".prj"} <= {
            "." + name.rsplit(".", 1)[1] for name in zipfile.ZipFile(out).namelist()}
    back = read_layer(out, id_field="district" if fmt == "shp" else "district_id")
    assert sorted(back.features["district_id"], key=int) == [str(i) for i in range(1, 51)]


def test_unknown_layer_export(layered_store, tmp_path):
    with pytest.raises(NotFound, match="nope"):
        export_layer(layered_store, "nope", tmp_path / "x.gpkg", "gpkg")


def test_geoparquet_reads_back_in_geopandas_and_agrees_with_the_csv(seeded, tmp_path, ctx):
    import geopandas as gpd
    import pyarrow.parquet as pq

    from geo311.imports import import_file, read_mapping
    from tests.store.test_import_flags import MAPPING, _csv

    (tmp_path / "m.toml").write_text(MAPPING)  # an imported row without a location
    import_file(seeded, ctx, _csv(tmp_path / "x.csv", [("x", "2012-05-01")], lon="", lat=""),
                read_mapping(tmp_path / "m.toml"))
    submit(seeded, ctx, NewRequest("SCB", lon=-87.6298, lat=41.8781,
                                   description="call me at 773-555-0123"))
    export_requests(seeded, tmp_path / "r.csv", "csv")
    assert export_requests(seeded, tmp_path / "r.parquet", "parquet", chunk_rows=2) == 5
    back = gpd.read_parquet(tmp_path / "r.parquet")  # an independent GeoParquet reader
    assert back.crs.equals("OGC:CRS84") and back.geometry.name == "geometry"
    csv = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert back["service_request_id"].tolist() == csv["service_request_id"].astype(int).tolist()
    assert str(back["requested_datetime"].dtype) == "datetime64[us, UTC]"
    assert (back["requested_datetime"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            == csv["requested_datetime"]).all()
    located = back.geometry.notna()
    assert located.tolist() == [True, True, True, False, True]
    assert back.geometry[located].y.round(4).tolist() == [41.8781, 41.8881, 41.8981, 41.8781]
    assert back["district_community_areas"].tolist()[:3] == ["32", "8", "8"]
    assert "773-555-0123" not in back.to_string()  # free text redacted as in every export
    assert not {"reporter_email", "reporter_phone", "reporter_first_name"} & set(back.columns)
    meta = pq.read_schema(tmp_path / "r.parquet").metadata[b"geo"]
    assert b'"primary_column": "geometry"' in meta


def test_export_filters_take_what_they_name(seeded, tmp_path, ctx):
    from datetime import UTC, datetime, timedelta

    from geo311.export import RequestFilter
    from geo311.model import Service

    seeded.catalogue.upsert([Service("GRAF", "Graffiti Removal", "Streets")])
    submit(seeded, ctx, NewRequest("GRAF", lon=-87.6298, lat=41.8781, address="100 W MADISON ST"))
    rows = pd.read_csv(tmp_path / "all.csv", dtype=str) if export_requests(
        seeded, tmp_path / "all.csv", "csv") else None
    cases = {
        "service": (RequestFilter(service_codes=["GRAF"]), rows["service_code"] == "GRAF"),
        "district": (RequestFilter(districts=[("community_areas", "8")]),
                     rows["district_community_areas"] == "8"),
        "two layers": (RequestFilter(districts=[("community_areas", "8"),
                                                ("community_areas", "32"),
                                                ("wards_2015_2023", "42")]),
                       rows["district_community_areas"].isin(["8", "32"])
                       & (rows["district_wards_2015_2023"] == "42")),
        "status": (RequestFilter(status="open"), rows["status"] == "open"),
        "future": (RequestFilter(start=datetime.now(UTC) + timedelta(days=1)),
                   rows["status"] != rows["status"]),
    }
    for name, (where, expected) in cases.items():
        out = tmp_path / f"{name}.csv"
        if not expected.any():
            with pytest.raises(InvalidRequest, match="no request matches"):
                export_requests(seeded, out, "csv", where=where)
            assert not out.exists()
            continue
        export_requests(seeded, out, "csv", where=where)
        got = pd.read_csv(out, dtype=str)["service_request_id"].tolist()
        assert got == rows.loc[expected, "service_request_id"].tolist(), name
    with pytest.raises(InvalidRequest, match="active layer"):
        export_requests(seeded, tmp_path / "x.csv", "csv",
                        where=RequestFilter(districts=[("nope", "1")]))
