"""Requests for records-package tests: reporters, hostile text, casework, a sensitive service.

Every value that must never reach a package is planted here and listed in ``SECRETS``,
written exactly as stored, so a test can look for each in every file of a package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from geo311 import casework
from geo311.intake import Context, submit
from geo311.model import NewRequest, Reporter, Service
from geo311.store import tables as t
from tests.prepared import prepared_state

SERVICES = [
    Service("SCB", "Sanitation Code Violation", "Sanitation", sla_days=3,
            agency="Streets and Sanitation"),
    Service("PHF", "Pothole in Street", "Streets", sla_days=3, agency="Transportation"),
    Service("DVS", "Domestic <b>Shelter</b> Referral", "Social", agency="Family Services"),
]

#: Descriptions as residents (or a legacy CRM) typed them.
HOSTILE = [
    "<script>alert('pwned')</script> rats, call me at 312-555-0199",
    "=cmd|' /C calc'!A0 write to maria.lopez@example.com",
    "+1 (773) 555-0123 is my cell <img src=x onerror=alert(1)>",
    "@SUM(1+1) garbage cart missing; email maria at example dot com",
    "Pothole near 4800 N ELSTON AVE, about 3 feet wide",
    "-2+3 overflowing dumpster, SSN 123-45-6789 on a letter in it",
]
REPORTERS = [Reporter(first_name=f"Zyxwa{k}", last_name=f"Quorvel{k}",
                      email=f"zyx.reporter{k}@example.net", phone=f"(312) 555-01{k:02d}",
                      device_id=f"device-QX{k:04d}", account_id=f"acct-QX{k:04d}")
             for k in range(len(HOSTILE))]
INTERNAL = "INTERNAL ONLY: caller is the alderman's cousin, 708-555-0177"
STAFF_REASON = "reopened: STAFF-REASON-9931 caller disputes"
FORWARD_REASON = "not ours FORWARD-REASON-5512"
PUBLIC_NOTE = "<script>x()</script>Crew sent; questions to 312-555-0111 or crew.lead@city.example"
RESOLUTION = "Fixed. =HYPERLINK(\"http://evil.example\") contact 773.555.0144"
SENSITIVE_ADDRESS = "1234 N HIDDENPLACE ST"
SENSITIVE_POINT = (-87.6512345, 41.9123456)
STAFF = "records-clerk-ann"
#: Every planted value that must appear in no file of any package.
SECRETS = (
    [v for r in REPORTERS for v in (r.first_name, r.last_name, r.email, r.phone, r.device_id,
                                    r.account_id)]
    + ["312-555-0199", "maria.lopez@example.com", "(773) 555-0123", "maria at example dot com",
       "123-45-6789", "708-555-0177", "alderman", "STAFF-REASON-9931", "FORWARD-REASON-5512",
       "312-555-0111", "crew.lead@city.example", "773.555.0144", SENSITIVE_ADDRESS,
       "javascript:", STAFF, "private text of a shelter"])


@dataclass(frozen=True)
class Seeded:
    """The seeded request ids: hostile ones, the sensitive one, and the one reopened."""

    ids: list[int]
    sensitive: int
    reopened: int
    forwarded: int
    received: datetime


def seed_records(store) -> Seeded:
    """Six hostile requests with reporters and casework, and a sensitive one."""
    store.catalogue.upsert(SERVICES)
    store.catalogue.set_sensitive("DVS", True)
    ctx = Context.from_store(store)
    start = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
    ids = []
    for k, text in enumerate(HOSTILE):
        made = submit(store, ctx, NewRequest(
            SERVICES[k % 2].code, lon=-87.75 + 0.02 * k, lat=41.80 + 0.02 * k,
            address=f"{1200 + 10 * k} W Test St", description="",
            requested_datetime=start + timedelta(days=k), reporter=REPORTERS[k], source="web"))
        ids.append(made.id)
        with store.engine.begin() as conn:  # as a legacy import would hold it (intake refuses HTML)
            conn.execute(update(t.service_requests).where(t.service_requests.c.id == made.id)
                         .values(description=text,
                                 media_url=("javascript:alert(1)" if k == 1 else
                                            "https://img.example.org/p/42.jpg" if k == 2
                                            else "")))
    sensitive = submit(store, ctx, NewRequest(
        "DVS", lon=SENSITIVE_POINT[0], lat=SENSITIVE_POINT[1], address=SENSITIVE_ADDRESS,
        description="private text of a shelter", requested_datetime=start + timedelta(days=1),
        reporter=REPORTERS[0], media_url="https://img.example.org/shelter.jpg")).id
    casework.change_status(store, ids[0], "closed", actor=STAFF, public_note=RESOLUTION,
                           internal_note=INTERNAL)
    casework.reopen(store, ids[0], STAFF_REASON, actor=STAFF)
    casework.add_note(store, ids[1], PUBLIC_NOTE, visibility="public", actor=STAFF)
    casework.add_note(store, ids[1], INTERNAL, visibility="internal", actor=STAFF)
    casework.add_note(store, ids[1], INTERNAL + " (again)", visibility="internal", actor=STAFF)
    casework.forward(store, ids[2], "PHF", actor=STAFF, reason=FORWARD_REASON)  # was SCB
    return Seeded(ids, sensitive, ids[0], ids[2], start)


@prepared_state("disclosure_seeded", base="layered")
def _seeded_state(store, workdir) -> Seeded:
    """The shipped wards and community areas with ``seed_records`` (tests: ``starts_from``)."""
    return seed_records(store)
