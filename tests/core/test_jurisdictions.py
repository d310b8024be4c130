"""The routing table: the shipped one, lookups by specificity, and precise errors."""

import pytest

from geo311.city import CITIES_PATH
from geo311.errors import ConfigError
from geo311.jurisdictions import parse_routing, read_routing, routing_path
from geo311.model import Service
from geo311.referral import responsible_agency

SHIPPED = CITIES_PATH / "chicago" / "routing.toml"


def _table(**top):
    base = {"jurisdiction_layer": "j",
            "agencies": [{"id": "a", "name": "A 311", "phone": "555-0100", "refer": True},
                         {"id": "b", "name": "B", "email": "b@example.org"},
                         {"id": "dept", "name": "Streets North"}],
            "routes": [{"jurisdiction": "1", "service": "*", "agency": "a"}]}
    base.update(top)
    return base


def test_the_shipped_table_routes_each_neighbour():
    table = read_routing(SHIPPED)
    assert table.jurisdiction_layer == "jurisdictions" and table.forward is False
    assert table.for_neighbour("1724582", "SDR", "Sanitation").id == "evanston-311"
    oak_park = table.for_neighbour("1754885", "SDR", "Sanitation")
    assert oak_park.named("Oak Park") == "the village or city hall of Oak Park"
    assert table.agencies["evanston-311"].contact() == \
        "phone 847-448-4311, https://www.cityofevanston.org/311"
    assert len(table.digest) == 16
    assert routing_path(SHIPPED.parent / "city.toml") == SHIPPED
    assert routing_path(None) is None and routing_path(SHIPPED, "/x.toml").name == "x.toml"


def test_inside_the_city_the_most_specific_route_wins_and_the_catalogue_is_the_fallback():
    table = parse_routing(_table(routes=[
        {"layer": "wards", "district": "*", "service": "Streets", "agency": "b"},
        {"layer": "wards", "district": "7", "service": "Streets", "agency": "dept"},
        {"layer": "wards", "district": "*", "service": "PH", "agency": "a"},
    ]))
    pothole = Service("PH", "Pothole", group="Streets", agency="Transportation")
    sign = Service("SG", "Sign", group="Streets", agency="Transportation")
    other = Service("RA", "Rats", group="Health", agency="Health")
    assert responsible_agency(table, pothole, {"wards": "7"}) == "A 311"  # code beats group
    assert responsible_agency(table, sign, {"wards": "7"}) == "Streets North"
    assert responsible_agency(table, sign, {"wards": "8"}) == "B"
    assert responsible_agency(table, other, {"wards": "7"}) == "Health"
    assert responsible_agency(table, sign, {"wards": None}) == "Transportation"
    assert responsible_agency(table, sign, {}) == "Transportation"


def test_a_named_neighbour_beats_the_catch_all():
    table = parse_routing(_table(routes=[
        {"jurisdiction": "*", "service": "*", "agency": "b"},
        {"jurisdiction": "1", "service": "*", "agency": "a"}]))
    assert table.for_neighbour("1", "X").id == "a"
    assert table.for_neighbour("2", "X").id == "b"


@pytest.mark.parametrize(("change", "message"), [
    ({"colour": "red"}, r"routing: unknown key 'colour'; the keys are: jurisdiction_layer"),
    ({"jurisdiction_layer": ""}, r"'jurisdiction_layer' was '' but is expected to name"),
    ({"forward": "yes"}, r"'forward' was 'yes' but is expected to be true or false"),
    ({"max_attempts": 0}, r"'max_attempts' was 0 but is expected to be a whole number"),
    ({"routes": [{"jurisdiction": "1", "service": "*", "agency": "zz"}]},
     r"routes\[0\]: 'agency' was 'zz' but is expected to be one of the agencies: \['a', 'b', "
     r"'dept'\]"),
    ({"routes": [{"jurisdiction": "1", "layer": "w", "service": "*", "agency": "a"}]},
     r"routes\[0\]: give either 'jurisdiction'"),
    ({"routes": [{"service": "*", "agency": "a"}]}, r"routes\[0\]: give either"),
    ({"routes": [{"jurisdiction": "1", "service": "*", "agency": "a"},
                 {"jurisdiction": "1", "service": "*", "agency": "b"}]},
     r"routes\[1\] repeats routes\[0\]"),
    ({"routes": [{"jurisdiction": "1", "service": "*", "agency": "dept"}]},
     r"routes\[0\]: agency 'dept' handles reports outside the city but gives no way"),
    ({"routes": [{"jurisdiction": "1", "district": "2", "service": "*", "agency": "a"}]},
     r"'district' goes with 'layer'"),
    ({"agencies": [{"id": "a", "name": "A", "refer": True}, {"id": "a", "name": "B"}]},
     r"agencies\[1\]: id 'a' is used twice"),
    ({"agencies": [{"id": "A B", "name": "A"}]}, r"agencies\[0\]: 'id' was 'A B'"),
    ({"agencies": [{"id": "a", "name": "A", "email": "nobody"}]},
     r"agencies\[0\]: 'email' was 'nobody' but is expected to be an address"),
    ({"agencies": [{"id": "a", "name": "A", "url": "javascript:alert(1)"}]},
     r"'url' was 'javascript:alert\(1\)' but is expected to be an http or https address"),
    ({"agencies": [{"id": "a", "name": "A",
                    "open311": {"endpoint": "ftp://x/open311/v2", "api_key_env": "K"}}]},
     r"agencies\[0\]: open311: 'endpoint' was 'ftp://x/open311/v2'"),
    ({"agencies": [{"id": "a", "name": "A",
                    "open311": {"endpoint": "https://x/v2", "api_key_env": "my key"}}]},
     r"'api_key_env' was 'my key' but is expected to name an environment variable"),
    ({"agencies": [{"id": "a", "name": "A", "open311": {
        "endpoint": "https://x/v2", "api_key_env": "K", "service_codes": {"SDR": 3}}}]},
     r"'service_codes' is expected to map"),
    ({"agencies": "a"}, r"'agencies' is expected to be a list of tables"),
])
def test_a_broken_table_is_refused_naming_the_entry_and_key(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_routing(_table(**change))


def test_a_file_that_is_not_toml_names_the_file(tmp_path):
    path = tmp_path / "routing.toml"
    path.write_text("jurisdiction_layer = \n")
    with pytest.raises(ConfigError, match=rf"{path}: not valid TOML"):
        read_routing(path)
    with pytest.raises(ConfigError, match=r"cannot be read"):
        read_routing(tmp_path / "missing.toml")

