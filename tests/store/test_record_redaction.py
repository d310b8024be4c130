"""Stored Open311 records: free text redacted, and records stored before redaction rebuilt."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from geo311 import open311_records
from geo311.intake import submit
from geo311.model import NewRequest, Service
from geo311.open311_records import build_records, refresh_records, request_page

LON, LAT = -87.6321, 41.8837
CHICAGO = ZoneInfo("America/Chicago")
PHONE, EMAIL = "312-555-0199", "maria.lopez@example.com"
TEXT = f"Cart missing at 1200 W 35TH ST (SR21-00123456), call me at {PHONE} or {EMAIL}"


def _one_request(store, ctx):
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    made = submit(store, ctx, NewRequest("SCB", LON, LAT, description=TEXT))
    store.requests.set_status(made.id, "closed", note=f"Called back on {PHONE}")
    return made


def test_stored_records_are_redacted_and_the_row_is_not(layered_store, ctx):
    made = _one_request(layered_store, ctx)
    record = json.loads(request_page(layered_store, CHICAGO, ids=[made.id]).texts[0])
    assert record["description"] == ("Cart missing at 1200 W 35TH ST (SR21-00123456), "
                                     "call me at [phone removed] or [email removed]")
    assert record["status_notes"] == "Called back on [phone removed]"
    kept = layered_store.requests.get(made.id)  # staff read the stored row intact
    assert kept.description == TEXT and kept.status_notes == f"Called back on {PHONE}"


def test_records_stored_before_redaction_are_stale_and_rebuilt(layered_store, ctx, monkeypatch):
    """A database filled by the previous record format serves no unredacted record."""
    store = layered_store
    made = _one_request(store, ctx)
    with store.engine.connect() as conn:
        built = build_records(store, conn, [made.id], CHICAGO)
    revision, stamp, _text = built[made.id]
    old_stamp = stamp.rsplit("|", 1)[0] + f"|{open311_records.RECORD_FORMAT - 1}"
    old_text = json.dumps({"service_request_id": str(made.id), "description": TEXT})
    store.public_records.save({made.id: (revision, old_stamp, old_text)})
    # Under the old format the old text is current: it is what an old reader served.
    monkeypatch.setattr(open311_records, "RECORD_FORMAT", open311_records.RECORD_FORMAT - 1)
    assert request_page(store, CHICAGO, ids=[made.id]).texts == [old_text]
    monkeypatch.undo()

    assert refresh_records(store, CHICAGO) == (1, 0)
    served = request_page(store, CHICAGO, ids=[made.id]).texts[0]
    assert PHONE not in served and EMAIL not in served and "[phone removed]" in served
