"""The public radius searches: open groups near a point, with sensitive services at their mask."""

import pytest

from geo311.geodesy import haversine_m
from geo311.intake import submit
from geo311.model import NewRequest, Service
from geo311.nearby import open_groups_near, open_requests_around
from geo311.privacy import masked_point

HERE = (-87.6321, 41.8837)


@pytest.fixture
def nearby(layered_store, ctx):
    store = layered_store
    store.catalogue.upsert([Service("SDR", "Street debris", "Streets"),
                           Service("DV", "Sensitive", "Social")])
    made = {
        "close": submit(store, ctx, NewRequest("SDR", HERE[0] + 0.0005, HERE[1])),  # ~41 m
        "far": submit(store, ctx, NewRequest("SDR", HERE[0] + 0.0040, HERE[1])),  # ~332 m
        "closed": submit(store, ctx, NewRequest("SDR", HERE[0] - 0.0020, HERE[1])),  # ~166 m
        "hidden": submit(store, ctx, NewRequest("DV", HERE[0] - 0.0010, HERE[1] + 0.0010,
                                                address="1 SECRET ST")),
    }
    made["dup"] = submit(store, ctx, NewRequest("SDR", HERE[0] + 0.0006, HERE[1]))
    store.requests.set_status(made["closed"].id, "closed")
    return store, made


def test_around_lists_open_group_leaders_nearest_first_at_their_shown_point(nearby):
    store, made = nearby
    assert made["dup"].duplicate_of == made["close"].id
    found = open_requests_around(store, *HERE, 400, {"DV"}, limit=10)
    ids = [r.id for r, _ in found]
    assert made["closed"].id not in ids and made["dup"].id not in ids
    assert ids.index(made["close"].id) < ids.index(made["far"].id)
    distances = [d for _, d in found]
    assert distances == sorted(distances)
    hidden = next((r, d) for r, d in found if r.id == made["hidden"].id)
    shown = masked_point(made["hidden"].lon, made["hidden"].lat)
    assert (hidden[0].lon, hidden[0].lat) == shown and hidden[0].address == ""
    assert hidden[1] == round(float(haversine_m(*HERE, *shown)), 1)
    assert [r.id for r, _ in open_requests_around(store, *HERE, 100, {"DV"}, limit=10)] == [
        r.id for r, d in found if d <= 100]
    assert len(open_requests_around(store, *HERE, 400, {"DV"}, limit=1)) == 1


def test_a_sensitive_request_is_matched_on_its_mask_not_its_true_point(nearby):
    store, made = nearby
    true_m = float(haversine_m(*HERE, made["hidden"].lon, made["hidden"].lat))
    shown_m = float(haversine_m(*HERE, *masked_point(made["hidden"].lon, made["hidden"].lat)))
    radius = (true_m + shown_m) / 2
    inside = {r.id for r, _ in open_requests_around(store, *HERE, radius, {"DV"}, limit=10)}
    exact = {r.id for r, _ in open_requests_around(store, *HERE, radius, set(), limit=10)}
    assert (made["hidden"].id in inside) == (shown_m <= radius)
    assert (made["hidden"].id in exact) == (true_m <= radius)
    assert (made["hidden"].id in inside) != (made["hidden"].id in exact)


def test_nearby_offers_each_open_group_once_at_its_nearest_member(nearby):
    store, made = nearby
    found = open_groups_near(store, HERE[0] + 0.0006, HERE[1], 250, {"DV"},
                             service_code="SDR", limit=5)
    assert [r.id for r, _ in found] == [made["close"].id]  # the group's first request
    assert found[0][1] == 0.0  # its member "dup" is at the point
    both = open_groups_near(store, *HERE, 400, {"DV"}, service_code="SDR", limit=5)
    assert [r.id for r, _ in both] == [made["close"].id, made["far"].id]
    assert len(open_groups_near(store, *HERE, 400, {"DV"}, service_code="SDR", limit=1)) == 1
    sensitive = open_groups_near(store, *HERE, 400, {"DV"}, service_code="DV")
    assert [r.address for r, _ in sensitive] == [""]
