"""Open311 records built straight from rows equal those built from ``ServiceRequest``.

GET requests builds its records from the query's rows (PostGIS writing the times in
the city's zone itself); ``open311.request_record`` builds them from stored requests.
Both must give the same records, field for field, for requests that use every field.
"""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from geo311 import open311
from geo311.intake import submit
from geo311.model import NewRequest, Reporter, Service
from geo311.open311 import request_record
from geo311.open311_records import request_documents
from geo311.privacy import mask_request
from geo311.store import tables as t
from tests.conftest import submit_as_imported

LON, LAT = -87.6321, 41.8837
CHICAGO = ZoneInfo("America/Chicago")


def records_of_requests(store, zone, *, extensions, **query):
    """The reference: stored requests, masked, then ``request_record``."""
    sensitive = store.catalogue.sensitive_codes()
    agencies = {sv.code: sv.agency for sv in store.catalogue.services()}
    return [request_record(mask_request(r, sensitive), zone, extensions=extensions,
                           agency=agencies.get(r.service_code, ""))
            for r in store.search.find(**query)]


@pytest.fixture
def varied(layered_store, ctx):
    store = layered_store
    store.catalogue.upsert([
        Service("SCB", "Sanitation Code Violation", "Sanitation", agency="Streets and San"),
        Service("DV", "Shelter referral", "Social", agency="Family Services"),
        Service("OLD", "Retired service", "", agency="Gone"),
    ])
    store.catalogue.set_sensitive("DV", True)
    winter = datetime(2026, 1, 15, 18, 30, 12, 987654, tzinfo=UTC)   # CST, -06:00
    summer = datetime(2026, 7, 4, 3, 5, 0, tzinfo=UTC)               # CDT, -05:00
    made = [
        submit_as_imported(store, ctx, NewRequest("SCB", LON, LAT,
                                                  description="Cart <b>\"full\"</b> é ☃",
                                                  address="233 S Wacker Dr",
                                                  requested_datetime=winter,
                                                  media_url="https://example.org/a.jpg",
                                                  reporter=Reporter(email="a@example.org"))),
        submit(store, ctx, NewRequest("SCB", LON, LAT + 0.00005,
                                      requested_datetime=winter + timedelta(hours=1))),
        submit(store, ctx, NewRequest("DV", LON + 0.01, LAT + 0.01, description="At my flat",
                                      address="10 W Elm St")),
        submit_as_imported(store, ctx, NewRequest("OLD", LON - 0.01, LAT,
                                                  description="tab\there\x01",
                                                  requested_datetime=summer)),
    ]
    store.requests.set_status(made[0].id, "closed", note="Cleaned; cart replaced")
    store.sla.set_expected([made[1].id], [summer + timedelta(days=3, seconds=0.5)])
    with store.engine.begin() as conn:
        conn.execute(update(t.services).where(t.services.c.code == "OLD").values(active=False))
    return store, made


@pytest.mark.parametrize("extensions", [False, True])
def test_store_records_equal_python_records(varied, extensions):
    store, made = varied
    query = {"start": datetime(2025, 1, 1, tzinfo=UTC), "limit": 1000, "offset": 0}
    fast = request_documents(store, CHICAGO, extensions=extensions, **query)
    slow = records_of_requests(store, CHICAGO, extensions=extensions, **query)
    assert len(fast) == len(made) and fast == slow
    by_id = {r["service_request_id"]: r for r in fast}
    first = by_id[str(made[0].id)]
    assert first["requested_datetime"] == "2026-01-15T12:30:12-06:00"
    assert by_id[str(made[3].id)]["requested_datetime"] == "2026-07-03T22:05:00-05:00"
    assert first["description"] == "Cart <b>\"full\"</b> é ☃"
    assert first["media_url"] == "https://example.org/a.jpg"
    sensitive = by_id[str(made[2].id)]
    assert sensitive["address"] is None and sensitive["description"] is None
    assert (sensitive["long"], sensitive["lat"]) != (made[2].lon, made[2].lat)
    assert "a@example.org" not in json.dumps(fast)
    if extensions:
        assert first["status_notes"] == "Cleaned; cart replaced"
        assert first["agency_responsible"] == "Streets and San"
        assert by_id[str(made[3].id)]["agency_responsible"] is None  # inactive service
        child = by_id[str(made[1].id)]["extended_attributes"]
        assert child["duplicate"] and child["parent_service_request_id"] == str(made[0].id)
        assert by_id[str(made[1].id)]["expected_datetime"] == "2026-07-06T22:05:00-05:00"
        assert first["extended_attributes"]["reporter_count"] == 2
        assert [d["layer"] for d in first["extended_attributes"]["districts"]] == sorted(
            made[0].districts)
    else:
        assert "extended_attributes" not in first
        assert first["status_notes"] == "Cleaned; cart replaced"  # a GeoReport v2 field
        assert tuple(first) == open311.REQUEST_FIELDS


def test_store_records_page_and_filter_like_python(varied):
    store, made = varied
    for query in ({"limit": 2, "offset": 1}, {"ids": [made[2].id, made[0].id]},
                  {"service_codes": ["SCB"], "statuses": ["open"]},
                  {"bbox": (LON - 0.001, LAT - 0.001, LON + 0.001, LAT + 0.001)}):
        fast = request_documents(store, CHICAGO, extensions=True, **query)
        assert fast == records_of_requests(store, CHICAGO, extensions=True, **query), query
