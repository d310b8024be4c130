"""A notice's area and times as staff give them: GeoJSON, KML, local times; bad ones refused."""

import json
from datetime import UTC, datetime

import pytest
import shapely

from geo311.errors import InvalidRequest
from geo311.notices import area_from_file, area_from_geojson, check_message, parse_time

BOX = shapely.box(-87.645, 41.875, -87.620, 41.895)
KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>Flood &amp; co</name>
<Polygon><outerBoundaryIs><LinearRing><coordinates>
-87.645,41.875,0 -87.620,41.875,0 -87.620,41.895,0 -87.645,41.895,0 -87.645,41.875,0
</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>
"""


def _feature(geometry):
    return {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(geometry)}


@pytest.mark.parametrize("wrap", ["geometry", "feature", "collection"])
def test_geojson_geometry_feature_or_collection_gives_the_same_area(wrap):
    data = {"geometry": shapely.geometry.mapping(BOX), "feature": _feature(BOX),
            "collection": {"type": "FeatureCollection", "features": [_feature(BOX)]}}[wrap]
    area = area_from_geojson(json.dumps(data))
    assert area.geometry.equals(BOX) and area.desc == "drawn area"


def test_several_polygons_are_joined_into_one_area():
    other = shapely.box(-87.70, 41.80, -87.69, 41.81)
    area = area_from_geojson(json.dumps({"type": "FeatureCollection", "features": [
        _feature(BOX), _feature(other)]}))
    assert area.geometry.geom_type == "MultiPolygon"
    assert abs(area.geometry.area - (BOX.area + other.area)) < 1e-12


def test_a_self_crossing_drawing_is_repaired_into_its_two_triangles():
    bow_tie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    area = area_from_geojson(json.dumps(bow_tie)).geometry
    assert area.is_valid and abs(area.area - 0.5) < 1e-12


@pytest.mark.parametrize("text,needle", [
    ("not json", "is not GeoJSON"),
    ('{"type": "Point", "coordinates": [-87.6, 41.8]}', "a Point, not a polygon"),
    ('{"type": "Nope"}', "type was 'Nope'"),
    ('{"type": "Polygon"}', "not a GeoJSON geometry"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}', "has no area"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}', "has no area"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [400, 0], [400, 1], [0, 0]]]}',
     "not longitudes and latitudes"),
    ('{"type": "FeatureCollection", "features": []}', "holds no geometry"),
])
def test_a_bad_drawing_is_refused_saying_what_arrived(text, needle):
    with pytest.raises(InvalidRequest, match=needle):
        area_from_geojson(text)


def test_too_detailed_an_area_is_refused():
    circle = shapely.Point(0, 0).buffer(1, quad_segs=6000)
    with pytest.raises(InvalidRequest, match="vertices; at most 20,000"):
        area_from_geojson(json.dumps(shapely.geometry.mapping(circle)))


def test_kml_and_geojson_files_give_the_same_area(tmp_path):
    kml = tmp_path / "flood.kml"
    kml.write_text(KML)
    geojson = tmp_path / "flood.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [_feature(BOX)]}))
    from_kml, from_geojson = area_from_file(kml), area_from_file(geojson)
    assert from_kml.geometry.equals(BOX) and from_geojson.geometry.equals(BOX)
    assert from_kml.desc == "flood.kml"


def test_files_of_other_kinds_or_broken_are_refused_by_the_name_sent(tmp_path):
    shp = tmp_path / "area.shp"
    shp.write_text("x")
    with pytest.raises(InvalidRequest, match="'area.shp' has extension '.shp'"):
        area_from_file(shp)
    broken = tmp_path / "upload.geojson"
    broken.write_text("{ nope")
    with pytest.raises(InvalidRequest) as refused:
        area_from_file(broken, shown="my flood.geojson")
    assert "my flood.geojson" in refused.value.message
    assert str(tmp_path) not in refused.value.message


def test_times_are_the_citys_unless_zoned_and_a_date_is_its_midnight():
    zone = "America/Chicago"
    assert parse_time("2026-12-08T18:00", zone) == datetime(2026, 12, 9, 0, 0, tzinfo=UTC)
    assert parse_time("2026-07-08 18:00", zone) == datetime(2026, 7, 8, 23, 0, tzinfo=UTC)
    assert parse_time("2026-12-08", zone) == datetime(2026, 12, 8, 6, 0, tzinfo=UTC)
    assert parse_time("2026-12-08T18:00+00:00", zone) == datetime(2026, 12, 8, 18, tzinfo=UTC)
    with pytest.raises(InvalidRequest, match="end was 'tomorrow'"):
        parse_time("tomorrow", zone, name="end")


def test_messages_are_checked_per_language():
    assert check_message("es", "  Inundación  ") == "Inundación"
    with pytest.raises(InvalidRequest, match="language was 'fr'"):
        check_message("fr", "Inondation")
    with pytest.raises(InvalidRequest, match=r"control character \(U\+0000\)"):
        check_message("en", "a\x00b")
    with pytest.raises(InvalidRequest, match="2001 characters"):
        check_message("en", "x" * 2001)
