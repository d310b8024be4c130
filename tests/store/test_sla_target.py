"""Setting a service's SLA target: the service, its requests' due times and the audit."""

import pytest

from geo311.errors import InvalidRequest, NotFound
from geo311.intake import submit
from geo311.model import NewRequest, Service
from geo311.sla import describe_target, set_target


def test_set_target_updates_the_service_and_due_times(layered_store, ctx):
    store = layered_store
    store.catalogue.upsert([Service("SDR", "Street debris", "Streets")])
    made = submit(store, ctx, NewRequest("SDR", -87.6321, 41.8837))
    assert store.requests.get(made.id).expected_datetime is None
    updated, n = set_target(store, "SDR", "hours", 48, actor="tester")
    assert n == 1 and store.requests.get(made.id).expected_datetime is not None
    assert (updated.sla_hours, updated.sla_days, updated.sla_clock) == (48, None, "24x7")
    assert store.catalogue.service("SDR").sla_hours == 48 and describe_target(updated).startswith("48 hours")
    [entry] = [e for e in store.audit.entries("service", "SDR") if e["action"] == "sla_set"]
    assert entry["detail"] == {"unit": "hours", "amount": 48} and entry["actor"] == "tester"
    business, _ = set_target(store, "SDR", "business_days", 2, calendar="chicago")
    assert (business.sla_days, business.sla_hours, business.sla_clock, business.sla_calendar) == (
        2, None, "business", "chicago")


def test_set_target_refuses_bad_values_and_changes_nothing(store):
    store.catalogue.upsert([Service("SDR", "Street debris", "Streets", sla_days=3)])
    with pytest.raises(InvalidRequest, match="unit was 'weeks'"):
        set_target(store, "SDR", "weeks", 1)
    with pytest.raises(InvalidRequest, match="expected to be > 0"):
        set_target(store, "SDR", "days", -1)
    with pytest.raises(NotFound):
        set_target(store, "SDR", "days", 1, calendar="atlantis")
    with pytest.raises(NotFound):
        set_target(store, "NOPE", "days", 1)
    assert store.catalogue.service("SDR").sla_days == 3
