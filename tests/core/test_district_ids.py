"""District ids as cities write them: declared rules, dissolved parts, never a guess."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import Point

from geo311.boundaries.reading import read_layer
from geo311.district_ids import normalise_ids, parse_id_rule
from geo311.districts import DistrictIndex, DistrictLayer
from geo311.errors import LayerError
from geo311.layerdefs import read_layer_definitions
from tests.core.test_boundaries import square, write_geojson


@pytest.mark.parametrize(("steps", "written", "read"), [
    ("digits", ["05", "5", "Ward 5", "WARD 05 "], ["5", "5", "5", "5"]),
    ("strip_zeros", ["05", "007A", "0", "10"], ["5", "7A", "0", "10"]),
    (["alnum", "upper"], ["C-11", "c11", "D 14"], ["C11", "C11", "D14"]),
    (["regex:(\\d\\d)\\d\\d[A-Z]?", "strip_zeros"], ["0509", "0502A", "2210"], ["5", "5", "22"]),
    ("regex:\\d+", ["12"], ["12"]),  # no group: the whole match
    (None, [" 05 ", "Ward 5"], ["05", "Ward 5"]),  # no rule: as written, only trimmed
])
def test_each_rule_reads_the_forms_it_declares(steps, written, read):
    assert normalise_ids(written, parse_id_rule(steps)) == read


@pytest.mark.parametrize(("steps", "value", "why"), [
    ("digits", "North", "no digits"),
    ("digits", "5-6", "2 separate runs of digits"),
    ("regex:(\\d\\d)\\d\\d", "509", "does not match"),
])
def test_an_id_the_rule_does_not_fit_is_refused_with_its_feature(steps, value, why):
    with pytest.raises(LayerError, match=rf"'{value}' \(feature 2\): it (has )?{why}"):
        normalise_ids(["5", value], parse_id_rule(steps), "wards.geojson")


@pytest.mark.parametrize(("spec", "message"), [
    ("guess", "step was 'guess' but is expected to be in"),
    ("regex:(", "is not a valid pattern"),
    ([5], "is expected to be text"),
])
def test_a_bad_rule_is_refused(spec, message):
    with pytest.raises(LayerError, match=message):
        parse_id_rule(spec)


def test_ids_written_differently_are_one_district_only_when_the_rule_says_so(tmp_path):
    rows = [{"ward": "05", "geometry": square(-87.72, 41.80)},
            {"ward": "Ward 5", "geometry": square(-87.71, 41.80)},
            {"ward": "6", "geometry": square(-87.70, 41.80)}]
    path = write_geojson(tmp_path / "wards.geojson", rows)
    as_written = read_layer(path, id_field="ward")
    assert sorted(as_written.features["district_id"]) == ["05", "6", "Ward 5"]  # no guessing
    read = read_layer(path, id_field="ward", id_rule="digits")
    assert list(read.features["district_id"]) == ["5", "6"]
    assert read.report.id_rule == "digits"
    [note] = read.report.problems
    assert (note.feature, note.district_id, note.action) == (1, "5", "dissolved")
    assert "written '05', 'Ward 5'" in note.problem
    five = read.features.geometry.iloc[0]
    assert five.equals(shapely.box(-87.72, 41.80, -87.70, 41.81))  # the two parts, unioned


def test_an_exclave_keeps_its_district(tmp_path):
    """Ward 7's island is delivered as its own feature; a point on it is in ward 7."""
    mainland, island = square(-87.72, 41.80), square(-87.60, 41.90, 0.002)
    rows = [{"ward": "7", "name": "Seventh", "geometry": mainland},
            {"ward": "8", "name": "Eighth", "geometry": square(-87.71, 41.80)},
            {"ward": "7", "name": "Seventh (island)", "geometry": island}]
    loaded = read_layer(write_geojson(tmp_path / "w.geojson", rows), id_field="ward",
                        name_field="name")
    f = loaded.features.set_index("district_id")
    assert f.loc["7", "name"] == "Seventh"  # the first name is kept, and the note says so
    note = loaded.report.problems[0].problem
    assert "names 'Seventh', 'Seventh (island)', kept the first" in note
    index = DistrictIndex([DistrictLayer("w", 1, list(f.index), list(f.geometry))])
    assert index.assign_one(-87.599, 41.901)["w"][0] == "7"
    assert index.assign_one(-87.715, 41.805)["w"][0] == "7"
    assert f.geometry["7"].contains(Point(-87.599, 41.901))


def test_a_layer_definition_declares_its_rule(tmp_path):
    source = write_geojson(tmp_path / "p.geojson",
                           [{"code": "0101", "geometry": square(-87.72, 41.80)}])
    (tmp_path / "layers").mkdir()
    good = tmp_path / "layers" / "wards.toml"
    good.write_text(f'name = "wards"\ntitle = "W"\nsource = "{source}"\nid_field = "code"\n'
                    "role = \"district\"\nid_rule = ['regex:(\\d\\d)\\d\\d', \"strip_zeros\"]\n")
    [d] = read_layer_definitions(tmp_path / "layers", tmp_path)
    assert d.id_rule == ("regex:(\\d\\d)\\d\\d", "strip_zeros")
    good.write_text(good.read_text().replace("strip_zeros", "guess"))
    with pytest.raises(LayerError, match=r"wards\.toml: 'id_rule': step was 'guess'"):
        read_layer_definitions(tmp_path / "layers", tmp_path)
