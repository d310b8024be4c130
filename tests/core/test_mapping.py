import pytest

from geo311.errors import InvalidRequest
from geo311.imports import read_mapping


@pytest.mark.parametrize("name", ["chicago-311-legacy", "chicago-311"])
def test_shipped_mappings_load(name):
    m = read_mapping(name)
    assert m.columns["id"] and m.columns["created"]
    assert set(m.status.values()) <= {"open", "closed"}
    assert m.xy_crs == "EPSG:3435"


def test_unknown_mapping_lists_shipped_ones():
    with pytest.raises(InvalidRequest, match="chicago-311-legacy"):
        read_mapping("nowhere")


def test_mapping_with_bad_status_value(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[columns]\nid="a"\ncreated="b"\nservice_name="c"\n[status]\nDone="finished"\n')
    with pytest.raises(InvalidRequest, match="'finished'"):
        read_mapping(p)


def test_mapping_with_unknown_field(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[columns]\nid="a"\ncreated="b"\nservice_name="c"\ncolour="d"\n')
    with pytest.raises(InvalidRequest, match="colour"):
        read_mapping(p)


def test_mapping_xy_needs_crs(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[columns]\nid="a"\ncreated="b"\nservice_name="c"\nx="X"\ny="Y"\n')
    with pytest.raises(InvalidRequest, match="xy_crs"):
        read_mapping(p)


def test_mapping_placeholder_is_a_point(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[columns]\nid="a"\ncreated="b"\nservice_name="c"\n'
                 '[coordinates]\nplaceholder=[-71.0587, 42.3594]\n')
    assert read_mapping(p).placeholder == (-71.0587, 42.3594)
    p.write_text('[columns]\nid="a"\ncreated="b"\nservice_name="c"\n'
                 '[coordinates]\nplaceholder="City Hall"\n')
    with pytest.raises(InvalidRequest, match=r"placeholder was 'City Hall' but is expected"):
        read_mapping(p)
