"""What each role sees in the navigation and where it lands after login.

One table, so a link is shown exactly when its page would let the user in: a
planner is not offered Dispatch only to be refused with 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, url_for

from geo311.accounts import StaffUser


@dataclass(frozen=True)
class StaffPage:
    """A staff page in the navigation: its endpoint, its label, who may open it."""

    endpoint: str
    label: str
    roles: tuple[str, ...]


#: Staff pages in navigation order. The roles match each view's ``role_required``
#: (admin may open them all); tests/web/test_navigation.py checks they agree.
STAFF_PAGES = (
    StaffPage("desk.desk", "Desk", ("agent", "dispatcher")),
    StaffPage("queues.request_list", "Requests", ("agent", "dispatcher")),
    StaffPage("referrals.referral_list", "Referrals", ("agent", "dispatcher")),
    StaffPage("dispatch.dispatch_map", "Dispatch", ("dispatcher",)),
    StaffPage("dispatch.work_order_list", "Work orders", ("dispatcher",)),
    StaffPage("dispatch.sla_page", "SLA", ("dispatcher",)),
    StaffPage("kpi.kpi", "KPI", ("planner", "dispatcher")),
    StaffPage("gis.home", "GIS", ("gis",)),
    StaffPage("disclosure.disclosures", "Records", ("records",)),
    StaffPage("notices.staff_page", "Notices", ("emergency",)),
    StaffPage("holds.hold_list", "Holds", ("records",)),
)

#: Where each role starts its day.
START_PAGES = {
    "agent": "desk.desk",
    "dispatcher": "dispatch.dispatch_map",
    "planner": "hotspots.hotspots_page",
    "gis": "gis.home",
    "records": "holds.hold_list",
    "emergency": "notices.staff_page",
    "admin": "dispatch.dispatch_map",
}


def pages_for(staff: StaffUser | None) -> list[StaffPage]:
    """The staff pages this user may open, in navigation order."""
    if staff is None:
        return []
    return [p for p in STAFF_PAGES if staff.may(*p.roles)]


def start_page(staff: StaffUser) -> str:
    """The URL a user lands on after login, by role."""
    return url_for(START_PAGES.get(staff.role, "pages.index"))


def init_app(app: Flask) -> None:
    """Give every template the staff links of the logged-in user."""
    from geo311_web.auth import current_staff

    @app.context_processor
    def _navigation() -> dict[str, Any]:
        return {"staff_pages": pages_for(current_staff())}
