from pathlib import Path

import pytest

from geo311.config import Settings
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
