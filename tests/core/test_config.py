from pathlib import Path

import pytest

from geo311.config import PROJECT_ROOT, SHIPPED_ROOT, Settings
from geo311.errors import ConfigError


def test_from_env_reads_prefixed_variables():
    s = Settings.from_env({"GEO311_DATABASE_URL": "postgresql+psycopg://h/db",
                           "GEO311_BOUNDARY_TOLERANCE_M": "7.5",
                           "GEO311_INSTANCE_PATH": "/tmp/x"})
    assert s.database_url == "postgresql+psycopg://h/db"
    assert s.boundary_tolerance_m == 7.5
    assert s.instance_path == Path("/tmp/x")


def test_default_database_is_spatialite_in_instance_folder(tmp_path):
    s = Settings(instance_path=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'geo311.sqlite'}"


def test_shipped_layers_and_data_are_found_and_can_be_replaced(tmp_path):
    s = Settings()
    assert (s.layers_path / "community_areas.toml").is_file()
    assert (s.data_path / "requests").is_dir() and s.layers_path.parent == SHIPPED_ROOT
    # in a checkout the package geo311_data is the checkout's root (pyproject package-dir)
    assert SHIPPED_ROOT == PROJECT_ROOT
    s = Settings.from_env({"GEO311_LAYERS_PATH": str(tmp_path / "layers"),
                           "GEO311_DATA_PATH": str(tmp_path / "data")})
    assert (s.layers_path, s.data_path) == (tmp_path / "layers", tmp_path / "data")


@pytest.mark.parametrize("var,value,needle", [
    ("GEO311_MAX_UPLOAD_BYTES", "lots", "GEO311_MAX_UPLOAD_BYTES was 'lots'"),
    ("GEO311_TIMEZONE", "Mars/Olympus", "GEO311_TIMEZONE was 'Mars/Olympus'"),
    ("GEO311_BOUNDARY_TOLERANCE_M", "-1", "GEO311_BOUNDARY_TOLERANCE_M was -1.0"),
])
def test_bad_values_name_the_variable(var, value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        Settings.from_env({var: value})


def test_bad_database_url_is_a_config_error():
    from geo311.store import open_store

    with pytest.raises(ConfigError, match="mysql"):
        open_store("mysql://x/y")
