"""Remote geocoders are optional plug-ins, off by default; nothing here touches the network."""

import importlib.util

import pytest

from geo311.city import load_profile
from geo311.config import Settings
from geo311.errors import ConfigError
from geo311.geocoding.remote import REMOTE_KINDS, RemoteGeocoder


def test_off_by_default_and_checked():
    assert Settings().remote_geocoder == ""
    assert Settings.from_env({"GEO311_REMOTE_GEOCODER": "census"}).remote_geocoder == "census"
    with pytest.raises(ConfigError, match="GEO311_REMOTE_GEOCODER was 'bing'"):
        Settings(remote_geocoder="bing")
    with pytest.raises(ConfigError, match="'bing'"):
        RemoteGeocoder("bing")


@pytest.mark.parametrize("kind, package", [("nominatim", "geopy"), ("census", "censusgeocode")])
def test_needs_its_optional_package(kind, package):
    assert kind in REMOTE_KINDS
    if importlib.util.find_spec(package) is None:
        with pytest.raises(ConfigError, match=package):
            RemoteGeocoder(kind)
    else:
        suffix = load_profile("chicago").remote_suffix
        remote = RemoteGeocoder(kind, extent=(-87.94, 41.64, -87.52, 42.02), city=suffix)
        assert remote.kind == kind and remote.city == "Chicago, IL"
