"""The Open311 POST flow as a core service: key, rate limit, jurisdiction, replay, intake."""

import pytest

from geo311.errors import Forbidden, InvalidRequest, NotFound, OutsideServiceArea, TooManyRequests
from geo311.model import Service
from geo311.open311_service import Catalogue, check_jurisdiction, create_request

LOOP = ("-87.6321", "41.8837")
AURORA = ("-88.3000", "41.7600")


@pytest.fixture
def keyed_city(layered_store, ctx):
    layered_store.catalogue.upsert([Service("SDR", "Street debris", "Streets", sla_days=3)])
    key = layered_store.accounts.create_api_key("app")
    return layered_store, ctx, key


def params(key, at=LOOP, **extra):
    base = {"api_key": [key], "service_code": ["SDR"], "long": [at[0]], "lat": [at[1]]}
    return {**base, **{k: [v] for k, v in extra.items()}}


def post(store, ctx, p, limit=(60, 60.0), jurisdiction=""):
    return create_request(store, lambda: ctx, Catalogue(store), p, rate_limit=limit,
                          jurisdiction_id=jurisdiction)


def test_a_post_is_stored_through_intake_and_answered(keyed_city):
    store, ctx, key = keyed_city
    created = post(store, ctx, params(key, description="bricks on the road"))
    assert not created.replayed and created.service.code == "SDR"
    assert store.requests.get(created.request.id).description == "bricks on the road"
    [doc] = created.document()
    assert doc["service_request_id"] == str(created.request.id)
    assert "within 3 days" in doc["service_notice"]


def test_a_client_request_id_is_stored_once_and_replayed(keyed_city):
    store, ctx, key = keyed_city
    count = store.requests.count()
    first = post(store, ctx, params(key, client_request_id="abc-1"))
    again = post(store, ctx, params(key, client_request_id="abc-1"))
    assert again.replayed and again.request.id == first.request.id
    assert store.requests.count() == count + 1
    other_key = store.accounts.create_api_key("other")
    theirs = post(store, ctx, params(other_key, client_request_id="abc-1"))
    assert not theirs.replayed and theirs.request.id != first.request.id


def test_a_failed_intake_releases_the_client_request_id(keyed_city):
    store, ctx, key = keyed_city
    with pytest.raises(OutsideServiceArea):
        post(store, ctx, params(key, at=AURORA, client_request_id="retry-me"))
    retried = post(store, ctx, params(key, client_request_id="retry-me"))
    assert not retried.replayed and store.requests.get(retried.request.id).service_code == "SDR"


def test_keys_limits_and_jurisdiction_are_checked_before_anything_is_stored(keyed_city):
    store, ctx, key = keyed_city
    count = store.requests.count()
    with pytest.raises(Forbidden, match="api_key is missing"):
        post(store, ctx, {"service_code": ["SDR"]})
    with pytest.raises(Forbidden, match="invalid or revoked"):
        post(store, ctx, params("not-a-key"))
    with pytest.raises(NotFound, match="jurisdiction_id 'elsewhere' was not found"):
        post(store, ctx, params(key, jurisdiction_id="elsewhere"), jurisdiction="chicago.il")
    with pytest.raises(InvalidRequest, match="service_code was not provided"):
        post(store, ctx, {"api_key": [key]})
    with pytest.raises(InvalidRequest, match="more than 200 characters"):
        post(store, ctx, params(key, client_request_id="x" * 201))
    with pytest.raises(NotFound):
        post(store, ctx, params(key) | {"service_code": ["NOPE"]})
    limited = store.accounts.create_api_key("busy")
    post(store, ctx, params(limited), limit=(1, 3600.0))
    with pytest.raises(TooManyRequests, match="the limit is 1"):
        post(store, ctx, params(limited), limit=(1, 3600.0))
    store.accounts.revoke_api_key("app")
    with pytest.raises(Forbidden):
        post(store, ctx, params(key))
    assert store.requests.count() == count + 1  # only the busy key's first post


def test_jurisdiction_any_when_none_is_served():
    check_jurisdiction({"jurisdiction_id": ["anything"]}, "")
    check_jurisdiction({}, "chicago.il")
    with pytest.raises(NotFound):
        check_jurisdiction({"jurisdiction_id": ["x"]}, "chicago.il")


def test_the_catalogue_serves_a_service_loaded_after_it_was_read(store):
    store.catalogue.upsert([Service("A1", "First")])
    catalogue = Catalogue(store, ttl_s=3600)
    assert set(catalogue.services()) == {"A1"}
    store.catalogue.upsert([Service("B2", "Second")])
    assert set(catalogue.services()) == {"A1"}  # cached until the TTL passes
    assert catalogue.service("B2").name == "Second"  # but a new code is looked up
    with pytest.raises(NotFound):
        catalogue.service("C3")
