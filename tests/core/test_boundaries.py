"""Reading and checking boundary layers, with the shipped shapefiles and broken real files."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from geo311.boundaries.files import checksum
from geo311.boundaries.quality import FeatureProblem, layer_quality
from geo311.boundaries.reading import read_layer
from geo311.config import PROJECT_ROOT
from geo311.errors import LayerError
from geo311.layerdefs import read_layer_definitions

SHAPEFILES = PROJECT_ROOT / "shapefiles"
EXPECTED_COUNTS = {
    "community_areas": 77,
    "wards_2003_2015": 50,
    "wards_2015_2023": 50,
    "wards_2023": 50,
    "police_districts_2012": 24,  # 27 source polygons dissolved by DIST_NUM
}
#: Norridge and Harwood Heights: villages surrounded by Chicago, a hole in every city layer.
NORRIDGE = Point(-87.8117, 41.9639)


@pytest.fixture(scope="module")
def shipped():
    definitions = read_layer_definitions(PROJECT_ROOT / "layers", PROJECT_ROOT)
    return {
        d.name: read_layer(d.source, id_field=d.id_field, name_field=d.name_field, crs=d.crs)
        for d in definitions
    }


def write_geojson(path: Path, rows: list[dict], crs: str = "EPSG:4326") -> Path:
    """Write ``rows`` (properties plus a ``geometry`` key) as a real GeoJSON file."""
    gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_file(path, driver="GeoJSON")
    return path


def square(lon: float, lat: float, size_deg: float = 0.01) -> Polygon:
    return box(lon, lat, lon + size_deg, lat + size_deg)


def shapefile_parts(shp: Path) -> list[Path]:
    return sorted(p for p in shp.parent.iterdir() if p.stem == shp.stem)


def write_zip(path: Path, members: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            archive.writestr(name, data)
    return path


def police_shp() -> Path:
    return SHAPEFILES / "police_districts_2012" / "police_districts_2012.shp"


# --- the shipped layers --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_shipped_layer_reads_with_unique_ids(shipped, name):
    loaded = shipped[name]
    features, report = loaded.features, loaded.report

    assert len(features) == EXPECTED_COUNTS[name] == report.feature_count
    assert list(features.columns) == ["district_id", "name", "geometry"]
    assert features["district_id"].is_unique
    assert all(isinstance(i, str) for i in features["district_id"])
    assert features.crs.to_epsg() == 4326
    assert set(features.geom_type) <= {"Polygon", "MultiPolygon"}
    assert features.is_valid.all()
    assert report.source_crs == "EPSG:4326"
    assert report.valid and report.problems == []
    west, south, east, north = report.bounds
    assert -87.95 < west < east < -87.52 and 41.64 < south < north < 42.03


def test_shipped_layer_names_and_ids(shipped):
    areas = shipped["community_areas"].features.set_index("district_id")["name"]
    assert sorted(areas.index, key=int) == [str(n) for n in range(1, 78)]
    assert areas["32"] == "LOOP"
    police = shipped["police_districts_2012"].features.set_index("district_id")["name"]
    assert police["1"] == "1ST" and "13" in police and "31" in police
    assert shipped["wards_2015_2023"].features["name"].isna().all()
    assert sorted(shipped["wards_2003_2015"].features["district_id"], key=int) == [
        str(n) for n in range(1, 51)
    ]


def test_shipped_layers_quality_is_small_relative_to_the_city(shipped):
    areas = shipped["community_areas"].features
    city_m2 = areas.to_crs(areas.estimate_utm_crs()).union_all().area
    assert 590e6 < city_m2 < 610e6

    for name, loaded in shipped.items():
        report = loaded.report
        print(
            f"{name}: {report.overlap_count} overlaps {report.overlap_area_m2:,.0f} m2, "
            f"{report.gap_count} gaps {report.gap_area_m2:,.0f} m2"
        )
        for item in report.overlaps[:5] + report.gaps[:5]:
            print("   ", item)
        assert report.overlap_area_m2 < 1e-4 * city_m2
        assert report.gap_area_m2 < 0.02 * city_m2
        assert report.overlaps == sorted(report.overlaps, key=lambda o: -o["area_m2"])
        if name == "police_districts_2012":
            # district 31 is made of the enclaves, so the police map has no hole there
            assert report.gap_count == 0
            district_31 = loaded.features.set_index("district_id").geometry["31"]
            assert district_31.contains(NORRIDGE)
        elif name == "jurisdictions":
            # the neighbours around the city: their gaps are unincorporated land, and the
            # enclave around Norridge is two of them (this point: Harwood Heights), not a hole
            ids = loaded.features.set_index("district_id")
            assert ids.geometry["1733435"].contains(NORRIDGE)  # Harwood Heights (Census GEOID)
        else:
            largest = report.gaps[0]
            assert 7.9e6 < largest["area_m2"] < 8.1e6
            assert Point(largest["lon"], largest["lat"]).distance(NORRIDGE) < 0.01

    ward_overlaps = shipped["wards_2003_2015"].report.overlaps
    assert ward_overlaps[0]["ids"] == ["7", "10"] and ward_overlaps[0]["area_m2"] > 5000
    assert shipped["community_areas"].report.overlap_count == 0


def test_report_is_json_ready(shipped):
    data = json.loads(json.dumps(shipped["wards_2003_2015"].report.to_dict()))
    assert data["valid"] is True
    assert data["feature_count"] == 50
    assert len(data["bounds"]) == 4
    assert set(data["gaps"][0]) == {"ids", "area_m2", "lon", "lat"}


# --- geometry problems ---------------------------------------------------------------------


def test_bow_tie_is_repaired_and_reported(tmp_path):
    bow_tie = Polygon([(-87.70, 41.80), (-87.69, 41.81), (-87.69, 41.80), (-87.70, 41.81)])
    assert not bow_tie.is_valid
    path = write_geojson(
        tmp_path / "bow.geojson",
        [{"code": "A", "geometry": square(-87.72, 41.80)}, {"code": "B", "geometry": bow_tie}],
    )

    loaded = read_layer(path, id_field="code")

    assert loaded.report.problems == [
        FeatureProblem(2, "B", "self-intersection at (-87.695, 41.805)", "repaired")
    ]
    assert loaded.report.valid
    repaired = loaded.features.set_index("district_id").geometry["B"]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon"
    assert repaired.area == pytest.approx(0.5 * 0.01 * 0.01)


def test_empty_and_non_polygon_features_are_rejected(tmp_path):
    path = write_geojson(
        tmp_path / "mixed.geojson",
        [
            {"code": "A", "geometry": square(-87.72, 41.80)},
            {"code": "B", "geometry": None},
            {"code": "C", "geometry": Point(-87.7, 41.8)},
        ],
    )

    loaded = read_layer(path, id_field="code")

    assert list(loaded.features["district_id"]) == ["A"]
    assert not loaded.report.valid
    assert loaded.report.feature_count == 3
    assert loaded.report.problems == [
        FeatureProblem(2, "B", "empty geometry", "rejected"),
        FeatureProblem(3, "C", "not a polygon (Point)", "rejected"),
    ]


def test_polygon_without_area_is_rejected(tmp_path):
    flat = Polygon([(-87.70, 41.80), (-87.69, 41.80), (-87.68, 41.80), (-87.70, 41.80)])
    path = write_geojson(
        tmp_path / "flat.geojson",
        [{"code": "A", "geometry": square(-87.72, 41.80)}, {"code": "B", "geometry": flat}],
    )

    (problem,) = read_layer(path, id_field="code").report.problems

    assert problem.action == "rejected" and "no area left after repair" in problem.problem


def test_layer_without_any_usable_feature_is_refused(tmp_path):
    path = write_geojson(tmp_path / "points.geojson", [{"code": "A", "geometry": Point(0, 0)}])
    with pytest.raises(LayerError, match=r"points\.geojson: no feature has a usable polygon"):
        read_layer(path, id_field="code")


def test_impossible_coordinates_name_the_feature(tmp_path):
    feet = box(1_150_000, 1_900_000, 1_151_000, 1_901_000)  # State Plane feet, labelled 4326
    path = write_geojson(tmp_path / "feet.geojson", [{"code": "A", "geometry": feet}])
    with pytest.raises(LayerError, match=r"feature\(s\) 1 \(id 'A'\) have impossible coordinates"):
        read_layer(path, id_field="code")


# --- coordinate systems --------------------------------------------------------------------


def test_state_plane_shapefile_comes_back_in_wgs84(tmp_path, shipped):
    original = gpd.read_file(SHAPEFILES / "community_areas" / "community_areas.shp")
    original.to_crs("EPSG:3435").to_file(tmp_path / "areas_3435.shp")

    loaded = read_layer(tmp_path / "areas_3435.shp", id_field="area_numbe")

    assert loaded.report.source_crs == "EPSG:3435"
    assert loaded.features.crs.to_epsg() == 4326
    expected = shipped["community_areas"].features
    back = shapely.get_coordinates(loaded.features.geometry.to_numpy())
    assert back.shape == shapely.get_coordinates(expected.geometry.to_numpy()).shape
    assert np.abs(back - shapely.get_coordinates(expected.geometry.to_numpy())).max() < 1e-6


@pytest.fixture
def shapefile_without_prj(tmp_path):
    areas = gpd.read_file(SHAPEFILES / "community_areas" / "community_areas.shp").head(5)
    areas.to_crs("EPSG:3435").to_file(tmp_path / "noprj.shp")
    (tmp_path / "noprj.prj").unlink()
    return tmp_path / "noprj.shp"


def test_shapefile_without_prj_needs_crs(shapefile_without_prj):
    with pytest.raises(LayerError, match=r"noprj\.shp has no \.prj.*pass --crs EPSG:XXXX"):
        read_layer(shapefile_without_prj, id_field="area_numbe")

    loaded = read_layer(shapefile_without_prj, id_field="area_numbe", crs="EPSG:3435")

    assert loaded.report.source_crs == "EPSG:3435"
    assert -87.95 < loaded.report.bounds[0] < loaded.report.bounds[2] < -87.52


def test_crs_that_contradicts_the_file_is_refused(tmp_path):
    areas = gpd.read_file(SHAPEFILES / "community_areas" / "community_areas.shp").head(2)
    areas.to_crs("EPSG:3435").to_file(tmp_path / "sp.shp")
    with pytest.raises(LayerError, match=r"declares EPSG:3435 but --crs EPSG:4326 was given"):
        read_layer(tmp_path / "sp.shp", id_field="area_numbe", crs="EPSG:4326")
    assert len(read_layer(tmp_path / "sp.shp", id_field="area_numbe", crs="EPSG:3435").features)


def test_unknown_crs_text_is_refused(shapefile_without_prj):
    with pytest.raises(LayerError, match=r"--crs was 'EPSG:nonsense'"):
        read_layer(shapefile_without_prj, id_field="area_numbe", crs="EPSG:nonsense")


# --- zips ----------------------------------------------------------------------------------


def test_zipped_shapefile_in_a_folder_reads(tmp_path):
    members: dict[str, bytes | Path] = {
        f"police/{p.name}": p for p in shapefile_parts(police_shp())
    }
    members["__MACOSX/police/._police_districts_2012.shp"] = b"\0\5\26\7"
    archive = write_zip(tmp_path / "police.zip", members)

    loaded = read_layer(archive, id_field="DIST_NUM")

    assert len(loaded.features) == 24
    assert loaded.report.source == str(archive)


def test_zip_missing_dbf(tmp_path):
    parts = {p.name: p for p in shapefile_parts(police_shp()) if p.suffix != ".dbf"}
    archive = write_zip(tmp_path / "nodbf.zip", parts)
    with pytest.raises(
        LayerError, match=r"nodbf\.zip: shapefile police_districts_2012\.shp is missing its \.dbf"
    ):
        read_layer(archive)


def test_zip_missing_prj_needs_crs(tmp_path):
    parts = {p.name: p for p in shapefile_parts(police_shp()) if p.suffix != ".prj"}
    archive = write_zip(tmp_path / "noprj.zip", parts)
    with pytest.raises(LayerError, match=r"has no \.prj.*--crs"):
        read_layer(archive, id_field="DIST_NUM")
    assert len(read_layer(archive, id_field="DIST_NUM", crs="EPSG:4326").features) == 24


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("../evil.shp", r"entry '\.\./evil\.shp' points outside the zip"),
        ("data/../../evil.shp", r"points outside the zip"),
        ("/tmp/evil.shp", r"entry '/tmp/evil\.shp' is an absolute path"),
    ],
)
def test_zip_entries_escaping_the_folder_are_refused(tmp_path, entry, message):
    archive = write_zip(tmp_path / "evil.zip", {entry: b"x", "ok.dbf": b"x"})
    with pytest.raises(LayerError, match=message):
        read_layer(archive)


def test_zip_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("layer.shp")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(LayerError, match=r"entry 'layer\.shp' is a symbolic link"):
        read_layer(archive)


def test_zip_bomb_over_the_limit_is_refused(tmp_path):
    archive = write_zip(
        tmp_path / "bomb.zip", {"bomb.shp": b"\0" * 2_000_000, "bomb.dbf": b"\0" * 2_000_000}
    )
    assert archive.stat().st_size < 50_000
    with pytest.raises(
        LayerError, match=r"bomb\.zip would expand to 4,000,000 bytes, more than the 1,000,000"
    ):
        read_layer(archive, max_unzipped_bytes=1_000_000)


def test_file_named_zip_that_is_not_one(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_text("ward,geometry\n")
    with pytest.raises(LayerError, match=r"fake\.zip has a \.zip extension but is not a zip"):
        read_layer(fake)


def test_zip_without_shapefile(tmp_path):
    archive = write_zip(tmp_path / "docs.zip", {"readme.txt": b"hello"})
    with pytest.raises(LayerError, match=r"docs\.zip holds no \.shp file"):
        read_layer(archive)


def test_zip_with_two_shapefiles_needs_a_layer(tmp_path):
    members: dict[str, bytes | Path] = {p.name: p for p in shapefile_parts(police_shp())}
    ward_shp = SHAPEFILES / "wards_2023" / "wards_2023.shp"
    members.update({p.name: p for p in shapefile_parts(ward_shp)})
    archive = write_zip(tmp_path / "two.zip", members)

    with pytest.raises(
        LayerError, match=r"holds 2 shapefiles \(police_districts_2012, wards_2023\); .*--layer"
    ):
        read_layer(archive)
    assert len(read_layer(archive, layer="wards_2023", id_field="ward").features) == 50


# --- file types and fields -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["notes.txt", "requests.csv"])
def test_unsupported_file_type(tmp_path, name):
    path = tmp_path / name
    path.write_text("ward,lon,lat\n1,-87.6,41.8\n")
    with pytest.raises(LayerError, match=rf"{name} is not a boundary file.*GeoJSON.*GeoPackage"):
        read_layer(path)


def test_missing_file(tmp_path):
    with pytest.raises(LayerError, match=r"nowhere\.shp does not exist"):
        read_layer(tmp_path / "nowhere.shp")


def test_broken_geojson(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(LayerError, match=r"broken\.geojson could not be read as GeoJSON"):
        read_layer(path)


def test_repeated_ids_are_dissolved_and_noted_with_their_features(tmp_path):
    path = write_geojson(
        tmp_path / "dup.geojson",
        [
            {"code": "A", "geometry": square(-87.72, 41.80)},
            {"code": "B", "geometry": square(-87.70, 41.80)},
            {"code": "A", "geometry": square(-87.68, 41.80)},
        ],
    )
    loaded = read_layer(path, id_field="code")
    assert list(loaded.features["district_id"]) == ["A", "B"]
    assert loaded.features.geometry.iloc[0].geom_type == "MultiPolygon"
    assert [(p.feature, p.district_id, p.action) for p in loaded.report.problems] == [
        (1, "A", "dissolved")]
    assert "2 features (1, 3)" in loaded.report.problems[0].problem
    assert loaded.report.valid and loaded.report.feature_count == 3


def test_empty_ids_are_named(tmp_path):
    path = write_geojson(
        tmp_path / "blank.geojson",
        [
            {"code": "A", "geometry": square(-87.72, 41.80)},
            {"code": " ", "geometry": square(-87.70, 41.80)},
            {"code": None, "geometry": square(-87.68, 41.80)},
        ],
    )
    with pytest.raises(LayerError, match=r"'code' is empty for feature\(s\) 2, 3"):
        read_layer(path, id_field="code")


def test_missing_id_field_lists_the_fields(tmp_path):
    path = write_geojson(
        tmp_path / "fields.geojson", [{"code": "A", "label": "x", "geometry": square(-87.7, 41.8)}]
    )
    with pytest.raises(
        LayerError, match=r"id field 'ward' is not in the file; its fields are: code, label"
    ):
        read_layer(path, id_field="ward")
    with pytest.raises(LayerError, match=r"name field 'title' is not in the file"):
        read_layer(path, id_field="code", name_field="title")


def test_id_field_is_guessed_and_numbers_become_text(tmp_path):
    path = write_geojson(
        tmp_path / "guess.geojson",
        [
            {"objectid": 7, "ward_id": 1.0, "label": "First", "geometry": square(-87.72, 41.8)},
            {"objectid": 8, "ward_id": 2.0, "label": "Second", "geometry": square(-87.70, 41.8)},
        ],
    )

    features = read_layer(path).features

    assert list(features["district_id"]) == ["1", "2"]
    assert list(features["name"]) == ["First", "Second"]


def test_id_field_that_cannot_be_guessed(tmp_path):
    path = write_geojson(
        tmp_path / "wards.geojson",
        [{"ward": "1", "alderman": "X", "geometry": square(-87.7, 41.8)}],
    )
    with pytest.raises(
        LayerError, match=r"could not tell which field .*fields are: ward, alderman.*--id-field"
    ):
        read_layer(path)


# --- other formats -------------------------------------------------------------------------


def test_geojson_round_trip_guesses_police_fields(tmp_path, shipped):
    police = gpd.read_file(police_shp())
    police.to_file(tmp_path / "police.geojson", driver="GeoJSON")

    loaded = read_layer(tmp_path / "police.geojson")

    assert list(loaded.features["district_id"]) == list(police["DIST_NUM"])
    assert list(loaded.features["name"]) == list(police["DIST_LABEL"])
    expected = shipped["police_districts_2012"].features.geometry
    assert loaded.features.geometry.geom_equals_exact(expected, tolerance=1e-7).all()


def test_geopackage_round_trip_and_layer_choice(tmp_path, shipped):
    wards = gpd.read_file(SHAPEFILES / "wards_2023" / "wards_2023.shp")
    gpkg = tmp_path / "wards.gpkg"
    wards.to_file(gpkg, layer="wards_2023", driver="GPKG")

    loaded = read_layer(gpkg, id_field="ward")
    assert len(loaded.features) == 50
    expected = shipped["wards_2023"].features.geometry
    assert loaded.features.geometry.geom_equals_exact(expected, tolerance=1e-9).all()

    wards.head(3).to_file(gpkg, layer="draft", driver="GPKG")
    with pytest.raises(
        LayerError, match=r"wards\.gpkg holds 2 layers \(wards_2023, draft\); .*--layer"
    ):
        read_layer(gpkg, id_field="ward")
    assert len(read_layer(gpkg, id_field="ward", layer="draft").features) == 3
    with pytest.raises(LayerError, match=r"has no layer 'final'; its layers are: wards_2023"):
        read_layer(gpkg, id_field="ward", layer="final")


def test_kml_round_trip(tmp_path):
    police = gpd.read_file(police_shp()).head(3)
    police.to_file(tmp_path / "police.kml", driver="KML")

    loaded = read_layer(tmp_path / "police.kml", id_field="DIST_NUM", name_field="DIST_LABEL")

    assert list(loaded.features["district_id"]) == ["1", "2", "3"]
    assert loaded.report.source_crs == "EPSG:4326"
    assert loaded.features.geometry.geom_equals_exact(police.geometry, tolerance=1e-6).all()


# --- quality -------------------------------------------------------------------------------


def grid_layer(cells: dict[str, Polygon]) -> gpd.GeoDataFrame:
    """Cells drawn in metres in UTM 16N, near Chicago, returned in EPSG:4326."""
    frame = gpd.GeoDataFrame(
        {"district_id": list(cells), "name": [None] * len(cells)},
        geometry=list(cells.values()),
        crs="EPSG:32616",
    )
    return frame.to_crs(4326)


def ring_of_cells(x0: float = 440_000, y0: float = 4_630_000) -> dict[str, Polygon]:
    """Eight 100 m cells around an empty centre cell (a 10,000 m2 hole)."""
    return {
        f"{row}{col}": box(
            x0 + 100 * col, y0 + 100 * row, x0 + 100 * col + 100, y0 + 100 * row + 100
        )
        for row in range(3)
        for col in range(3)
        if (row, col) != (1, 1)
    }


def test_layer_quality_finds_an_overlap_and_a_hole():
    cells = ring_of_cells()
    cells["00"] = box(440_000, 4_630_000, 440_110, 4_630_100)  # 10 m into cell 01

    overlaps, gaps = layer_quality(grid_layer(cells))

    assert [o["ids"] for o in overlaps] == [["00", "01"]]
    assert overlaps[0]["area_m2"] == pytest.approx(1000, abs=1)
    assert len(gaps) == 1
    assert gaps[0]["area_m2"] == pytest.approx(10_000, abs=1)
    assert gaps[0]["ids"] == ["00", "01", "02", "10", "12", "20", "21", "22"]
    assert Point(gaps[0]["lon"], gaps[0]["lat"]).within(
        grid_layer({"c": box(440_100, 4_630_100, 440_200, 4_630_200)}).geometry[0]
    )


def test_layer_quality_ignores_noise_and_islands():
    cells = ring_of_cells()
    cells["island"] = box(440_125, 4_630_125, 440_175, 4_630_175)  # 2,500 m2 inside the hole
    cells["01"] = box(440_100, 4_630_000, 440_200.005, 4_630_100)  # 0.5 m2 into cell 02

    overlaps, gaps = layer_quality(grid_layer(cells), tolerance_m2=1.0)

    assert overlaps == []
    assert [g["area_m2"] for g in gaps] == [pytest.approx(7_500, abs=1)]
    assert "island" in gaps[0]["ids"]


def test_layer_quality_of_an_empty_layer():
    assert layer_quality(grid_layer({})) == ([], [])


# --- checksum ------------------------------------------------------------------------------


def test_checksum_of_a_plain_file(tmp_path):
    path = tmp_path / "wards.geojson"
    path.write_bytes(b'{"type": "FeatureCollection", "features": []}')
    assert checksum(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_checksum_is_the_same_however_a_shapefile_is_delivered(tmp_path):
    shp = police_shp()
    members: dict[str, bytes | Path] = {f"nested/{p.name}": p for p in shapefile_parts(shp)}
    archive = write_zip(tmp_path / "police.zip", members)
    copy = tmp_path / "copy"
    copy.mkdir()
    for part in shapefile_parts(shp):
        (copy / part.name).write_bytes(part.read_bytes())

    assert checksum(shp) == checksum(shp.parent) == checksum(archive) == checksum(copy)
    dbf = copy / "police_districts_2012.dbf"
    data = bytearray(dbf.read_bytes())
    data[-2] ^= 1
    dbf.write_bytes(bytes(data))
    assert checksum(copy) != checksum(shp)
    with pytest.raises(LayerError, match="does not exist"):
        checksum(tmp_path / "missing.shp")
