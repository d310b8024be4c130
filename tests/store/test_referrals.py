"""The referrals outbox on both backends: claims, a stopped worker's rows, flags and retries."""

from datetime import timedelta

import pytest

from geo311.errors import InvalidRequest, NotFound
from geo311.store.rows import now_utc

STOPPED_AFTER = timedelta(minutes=10)


def _add(store, status="pending", **extra):
    return store.referrals.add({
        "status": status, "service_code": "SDR", "jurisdiction_id": "1724582",
        "jurisdiction_name": "Evanston", "agency_id": "evanston-311", "how": "open311",
        "lon": -87.6816, "lat": 42.048, "attributes": {"size": ["large"]}, **extra},
        actor="tests")


def test_references_are_unique_and_found_in_any_case(store):
    first, second = _add(store), _add(store, status="referred")
    assert first["reference"] != second["reference"]
    assert first["reference"].startswith("R-")
    assert store.referrals.get(first["reference"].lower())["id"] == first["id"]
    assert first["attributes"] == {"size": ["large"]}
    assert second["next_attempt_at"] is None  # told only: nothing to send
    with pytest.raises(NotFound, match="referral 'R-0' does not exist"):
        store.referrals.get("R-0")
    with pytest.raises(InvalidRequest, match="status was 'sent'"):
        _add(store, status="sent")


def test_a_row_is_claimed_once_and_a_stopped_workers_row_comes_back(store):
    made = _add(store)
    now = now_utc()
    (claimed,) = store.referrals.claim(now, limit=10, stopped_after=STOPPED_AFTER)
    assert claimed["id"] == made["id"] and claimed["attempts"] == 1
    assert store.referrals.claim(now, limit=10, stopped_after=STOPPED_AFTER) == []
    later = now + STOPPED_AFTER + timedelta(seconds=1)
    (again,) = store.referrals.claim(later, limit=10, stopped_after=STOPPED_AFTER)
    assert again["id"] == made["id"] and again["attempts"] == 2
    # the first answer settles the row; a later one (the stopped worker's) changes nothing
    store.referrals.mark_forwarded(made["id"], "77", later)
    store.referrals.mark_failed(made["id"], "too late")  # no longer sending: ignored
    row = store.referrals.get(made["reference"])
    assert (row["status"], row["remote_id"]) == ("forwarded", "77")
    assert store.referrals.counts()["forwarded"] == 1


def test_retry_waits_and_only_a_failed_row_is_sent_again(store):
    made = _add(store)
    now = now_utc()
    store.referrals.claim(now, limit=10, stopped_after=STOPPED_AFTER)
    store.referrals.mark_retry(made["id"], "HTTP 503", now + timedelta(minutes=2))
    assert store.referrals.claim(now + timedelta(minutes=1), limit=10,
                                 stopped_after=STOPPED_AFTER) == []
    (claimed,) = store.referrals.claim(now + timedelta(minutes=2), limit=10,
                                       stopped_after=STOPPED_AFTER)
    with pytest.raises(InvalidRequest, match="is sending: only a failed one"):
        store.referrals.retry(made["reference"], actor="tests")
    store.referrals.mark_failed(claimed["id"], "HTTP 400: unknown service")
    assert [r["reference"] for r in store.referrals.rows(status="failed")] == \
        [made["reference"]]
    back = store.referrals.retry(made["reference"], actor="desk-agent")
    assert (back["status"], back["attempts"]) == ("pending", 0)
    actions = [(e["action"], e["actor"]) for e in store.audit.entries("referral",
                                                                      made["reference"])]
    assert actions == [("referral_made", "tests"), ("referral_failed", "referrals"),
                       ("referral_retried", "desk-agent")]
