"""Phone numbers and email addresses typed into free text never reach a public output.

A hostile description goes in through the web form and through Open311 POST, and a staff
status note carries a phone number too. Every public output is read back: the tracking
page, the citizen map, the public JSON API (one request, nearby, around), Open311 GET in
JSON and XML (with and without extensions), the bulk export, OGC API items and the
``geo311 export requests`` files. Staff (``--include-private``) still read the text intact.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import pyogrio
import pytest

from geo311_web.cli import cli
from tests.web.conftest import LOOP, PILSEN

#: Open311's stored records and the exports read rows per backend: run on PostGIS too.
pytestmark = pytest.mark.both_backends

FORM_PHONE, FORM_EMAIL = "(312) 555-0199", "maria.lopez@example.com"
API_PHONE, API_EMAIL = "+44 20 7946 0958", "jan.kowalski at wp dot pl"
NOTE_PHONE = "773.555.0142"
FORM_TEXT = (f"Pothole 3 ft wide at 1200 W 35TH ST, same as SR21-00123456. "
             f"Call me at {FORM_PHONE} or {FORM_EMAIL}")
API_TEXT = f"Dumped tires behind 4800 N ELSTON AVE 60630 since 12/06/2026, tel {API_PHONE} / {API_EMAIL}"
SECRETS = (FORM_PHONE, FORM_EMAIL, API_PHONE, API_EMAIL, NOTE_PHONE,
           "555-0199", "maria.lopez", "7946 0958", "jan.kowalski", "555-0142", "555.0142")
#: What must stay: the address, the city's own request number, the ZIP and the date.
KEPT = ("1200 W 35TH ST", "SR21-00123456", "4800 N ELSTON AVE 60630", "12/06/2026")


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def reported(client, city):
    """One report from the web form, one from Open311, and a staff note with a phone."""
    page = client.post("/report", data={
        "service_code": "SDR", "lat": str(LOOP[1]), "long": str(LOOP[0]),
        "description": FORM_TEXT, "name": "Maria", "email": FORM_EMAIL})
    assert page.status_code == 200, page.get_data(as_text=True)[:400]
    posted = client.post("/open311/v2/requests.json", data={
        "api_key": city.key, "service_code": "SDR", "lat": str(PILSEN[1]),
        "long": str(PILSEN[0]), "description": API_TEXT})
    assert posted.status_code == 200, posted.get_data(as_text=True)
    api_id = int(posted.get_json()[0]["service_request_id"])
    form_id = next(r.id for r in city.store.requests.query(limit=10) if r.id != api_id)
    city.store.requests.set_status(api_id, "open", note=f"Crew will call {NOTE_PHONE} first",
                                   actor="staff")
    return city.store, form_id, api_id


def test_the_stored_rows_keep_the_text_for_staff(reported):
    store, form_id, api_id = reported
    assert store.requests.get(form_id).description == FORM_TEXT
    assert store.requests.get(api_id).description == API_TEXT
    assert NOTE_PHONE in store.requests.get(api_id).status_notes


def test_tracking_pages_and_citizen_map_show_tokens_not_identifiers(client, reported):
    _store, form_id, api_id = reported
    for rid in (form_id, api_id):
        html = client.get(f"/requests/{rid}").get_data(as_text=True)
        assert not _leaks(html), rid
        assert "[phone removed]" in html and "[email removed]" in html
    html = client.get(f"/requests/{form_id}").get_data(as_text=True)
    assert "1200 W 35TH ST, same as SR21-00123456" in html
    citizen_map = client.get("/").get_data(as_text=True)
    assert "[phone removed]" in citizen_map and not _leaks(citizen_map)


def test_public_json_api_nearby_and_around(client, reported):
    _store, form_id, api_id = reported
    bodies = [client.get(f"/api/requests/{rid}").get_data(as_text=True)
              for rid in (form_id, api_id)]
    for lon, lat in (LOOP, PILSEN):
        for path in ("nearby", "around"):
            answer = client.get(f"/api/requests/{path}?lat={lat}&long={lon}&service_code=SDR")
            assert answer.status_code == 200 and answer.get_json(), path
            bodies.append(answer.get_data(as_text=True))
    for body in bodies:
        assert not _leaks(body)
        assert "[phone removed]" in body


def test_open311_get_json_and_xml_and_bulk(client, reported):
    _store, form_id, api_id = reported
    seen = {}
    for query in ("", "?extensions=true", f"?service_request_id={form_id},{api_id}"):
        for fmt in ("json", "xml"):
            body = client.get(f"/open311/v2/requests.{fmt}{query}").get_data(as_text=True)
            seen[(query, fmt)] = body
            assert not _leaks(body), (query, fmt)
    one = client.get(f"/open311/v2/requests/{api_id}.json?extensions=true").get_json()[0]
    assert one["description"] == ("Dumped tires behind 4800 N ELSTON AVE 60630 since "
                                  "12/06/2026, tel [phone removed] / [email removed]")
    assert one["status_notes"] == "Crew will call [phone removed] first"
    assert "extended_attributes" in one and not _leaks(json.dumps(one))
    xml = ET.fromstring(client.get(f"/open311/v2/requests/{form_id}.xml").get_data())
    assert xml.find("request/description").text.endswith(
        "Call me at [phone removed] or [email removed]")
    for fmt in ("csv", "json"):
        body = client.get(f"/open311/bulk/requests.{fmt}").get_data(as_text=True)
        assert not _leaks(body), fmt
        assert all(k in body for k in KEPT), fmt


def test_ogc_items(client, reported):
    _store, form_id, api_id = reported
    page = client.get("/ogc/collections/requests/items").get_data(as_text=True)
    assert not _leaks(page) and "[email removed]" in page
    for rid in (form_id, api_id):
        item = client.get(f"/ogc/collections/requests/items/{rid}").get_json()
        assert not _leaks(json.dumps(item))
        assert "[phone removed]" in item["properties"]["description"]
    html = client.get("/ogc/collections/requests/items?f=html").get_data(as_text=True)
    assert not _leaks(html)


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_public_export_redacts_and_private_export_keeps(app, reported, tmp_path, fmt):
    _store, form_id, api_id = reported
    runner = app.test_cli_runner()
    public, private = tmp_path / f"public.{fmt}", tmp_path / f"private.{fmt}"
    for out, extra in ((public, []), (private, ["--include-private"])):
        result = runner.invoke(cli, ["export", "requests", "--format", fmt, "--output",
                                     str(out), *extra])
        assert result.exit_code == 0, result.output
    if fmt == "csv":
        rows = {int(r["service_request_id"]): r for r in csv.DictReader(open(public))}
        staff = {int(r["service_request_id"]): r for r in csv.DictReader(open(private))}
    else:
        rows = {int(r["service_request_id"]): r
                for r in pyogrio.read_dataframe(public).to_dict("records")}
        staff = {int(r["service_request_id"]): r
                 for r in pyogrio.read_dataframe(private).to_dict("records")}
    assert not _leaks(public.read_text(encoding="utf-8"))
    assert rows[form_id]["description"] == ("Pothole 3 ft wide at 1200 W 35TH ST, same as "
                                            "SR21-00123456. Call me at [phone removed] or "
                                            "[email removed]")
    assert rows[api_id]["status_notes"] == "Crew will call [phone removed] first"
    assert staff[form_id]["description"] == FORM_TEXT
    assert staff[api_id]["description"] == API_TEXT
    assert NOTE_PHONE in staff[api_id]["status_notes"]
