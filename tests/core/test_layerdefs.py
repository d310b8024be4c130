"""The shipped layer definitions and the errors a broken definition gives."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest

from geo311.config import PROJECT_ROOT
from geo311.errors import LayerError
from geo311.layerdefs import LayerDefinition, read_layer_definitions

GOOD = """
name = "{name}"
title = "Test layer"
source = "data/layer.geojson"
id_field = "code"
role = "{role}"
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "layer.geojson").write_text(
        '{"type": "FeatureCollection", "features": []}'
    )
    (tmp_path / "layers").mkdir()
    return tmp_path


def write(root: Path, name: str, text: str) -> Path:
    path = root / "layers" / f"{name}.toml"
    path.write_text(text)
    return path


def test_shipped_definitions_load_and_point_at_existing_files():
    definitions = read_layer_definitions(PROJECT_ROOT / "layers", PROJECT_ROOT)

    assert [d.name for d in definitions] == [
        "community_areas",
        "jurisdictions",
        "police_districts_2012",
        "wards_2003_2015",
        "wards_2015_2023",
        "wards_2023",
    ]
    assert [d.role for d in definitions].count("service_area") == 1
    assert definitions[0].role == "service_area"
    assert [d.name for d in definitions if d.role == "jurisdiction"] == ["jurisdictions"]
    assert [d.name for d in definitions if d.name.startswith("wards") and d.active] == [
        "wards_2015_2023"
    ]
    for definition in definitions:
        assert definition.source.is_absolute() and definition.source.is_file()
        assert definition.source.is_relative_to(PROJECT_ROOT / "shapefiles")
        assert definition.crs is None  # every shipped shapefile has its .prj
        assert definition.title and definition.description
        fields = list(pyogrio.read_info(definition.source)["fields"])
        assert definition.id_field in fields
        assert definition.name_field is None or definition.name_field in fields


def test_defaults_and_relative_source(root):
    write(root, "areas", GOOD.format(name="areas", role="district"))

    (definition,) = read_layer_definitions(root / "layers", root)

    assert definition == LayerDefinition(
        name="areas",
        title="Test layer",
        source=(root / "data" / "layer.geojson").resolve(),
        id_field="code",
        name_field=None,
        role="district",
        crs=None,
        active=True,
        description="",
    )


def test_service_area_comes_first(root):
    write(root, "a_wards", GOOD.format(name="a_wards", role="district"))
    write(root, "z_city", GOOD.format(name="z_city", role="service_area"))
    write(root, "b_police", GOOD.format(name="b_police", role="district"))

    names = [d.name for d in read_layer_definitions(root / "layers", root)]

    assert names == ["z_city", "a_wards", "b_police"]


def test_bad_toml_names_the_file(root):
    write(root, "broken", 'name = "broken"\ntitle = \n')
    with pytest.raises(LayerError, match=r"broken\.toml is not valid TOML"):
        read_layer_definitions(root / "layers", root)


def test_unknown_role_names_file_and_key(root):
    write(root, "wards", GOOD.format(name="wards", role="ward"))
    with pytest.raises(
        LayerError,
        match=r"wards\.toml: 'role' was 'ward' but is expected to be in "
        r"\['service_area', 'district', 'jurisdiction'\]",
    ):
        read_layer_definitions(root / "layers", root)


def test_missing_name(root):
    write(root, "nameless", GOOD.format(name="x", role="district").replace('name = "x"\n', ""))
    with pytest.raises(LayerError, match=r"nameless\.toml: missing key 'name'"):
        read_layer_definitions(root / "layers", root)


def test_name_must_match_the_file(root):
    write(root, "wards", GOOD.format(name="police", role="district"))
    with pytest.raises(LayerError, match=r"wards\.toml: 'name' was 'police'"):
        read_layer_definitions(root / "layers", root)


def test_missing_source_on_disk(root):
    text = GOOD.format(name="gone", role="district").replace("data/layer.geojson", "data/gone.shp")
    write(root, "gone", text)
    with pytest.raises(LayerError, match=r"gone\.toml: 'source' 'data/gone\.shp' does not exist"):
        read_layer_definitions(root / "layers", root)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('id_feild = "code"', r"unknown key 'id_feild'"),
        ('crs = "EPSG:nonsense"', r"'crs' was 'EPSG:nonsense'"),
        ('active = "yes"', r"'active' was 'yes' but is expected to be true or false"),
        ("name_field = 3", r"'name_field' was 3 but is expected to be a non-empty string"),
    ],
)
def test_bad_values_name_file_and_key(root, extra, message):
    write(root, "layer", GOOD.format(name="layer", role="district") + extra + "\n")
    with pytest.raises(LayerError, match=rf"layer\.toml: {message}"):
        read_layer_definitions(root / "layers", root)


def test_only_one_service_area(root):
    write(root, "one", GOOD.format(name="one", role="service_area"))
    write(root, "two", GOOD.format(name="two", role="service_area"))
    with pytest.raises(LayerError, match=r"only one layer may have role 'service_area'"):
        read_layer_definitions(root / "layers", root)


def test_missing_layers_folder(tmp_path):
    with pytest.raises(LayerError, match=r"layer definitions folder .* does not exist"):
        read_layer_definitions(tmp_path / "layers", tmp_path)
