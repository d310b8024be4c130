"""No reporter identity in any Open311 GET response: every field of every response is walked."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET

import pytest

from geo311.model import Reporter
from tests.web.conftest import AUSTIN, LOOP

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends

REPORTERS = [
    Reporter("Quintessa", "Vandermolen", "q.vandermolen@example.org", "773-555-0142",
             "device-7f3a9c", "acct-55120"),
    Reporter("Bartholomew", "Okonkwo-Reyes", "bart.or@example.net", "+1 312 555 0199",
             "ios-ABCD-1234", "user-8841"),
]
SECRETS = [v for r in REPORTERS for v in (r.first_name, r.last_name, r.email, r.phone,
                                          r.device_id, r.account_id)]


def leaves_of_json(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from leaves_of_json(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves_of_json(v)
    elif value is not None:
        yield str(value)


def leaves_of_xml(element):
    yield element.tag
    yield from element.attrib.values()
    if element.text:
        yield element.text
    for child in element:
        yield from leaves_of_xml(child)


def leaves_of_csv(text):
    for row in csv.reader(text.splitlines()):
        yield from row


def test_no_reporter_value_appears_in_any_get_response(app, client, city):
    parent = city.report("SCB", description="Overflowing dumpster", reporter=REPORTERS[0],
                         attributes={"nature": ("dumpster_not_being_emptied",)})
    child = city.report("SCB", reporter=REPORTERS[1], attributes={"nature": ("other",)})
    city.report("SDR", at=AUSTIN, reporter=REPORTERS[1])
    form = {"api_key": city.key, "service_code": "SDR", "lat": str(LOOP[1] + 0.01),
            "long": str(LOOP[0]), "email": REPORTERS[0].email,
            "first_name": REPORTERS[0].first_name, "last_name": REPORTERS[0].last_name,
            "phone": REPORTERS[0].phone, "device_id": REPORTERS[0].device_id,
            "account_id": REPORTERS[0].account_id}
    posted = client.post("/open311/v2/requests.json", data=form)
    assert posted.status_code == 200
    for leaf in leaves_of_json(posted.get_json()):  # the POST answer leaks nothing either
        assert not any(s in leaf for s in SECRETS)
    assert child.duplicate_of == parent.id
    assert city.store.requests.reporters_of(parent.id)[0].email == REPORTERS[0].email

    urls = ["/open311/discovery.{f}", "/open311/v2/services.{f}",
            "/open311/v2/services/SCB.{f}", "/open311/v2/services/GRAF.{f}",
            "/open311/v2/requests.{f}", "/open311/v2/requests.{f}?extensions=true",
            "/open311/v2/requests.{f}?extensions=true&status=open&bbox=-88,41,-87,42",
            f"/open311/v2/requests.{{f}}?service_request_id={parent.id},{child.id}",
            f"/open311/v2/requests/{parent.id}.{{f}}",
            f"/open311/v2/requests/{child.id}.{{f}}?extensions=true",
            "/open311/v2/tokens/1.{f}"]
    checked = {}
    for url in urls:
        for fmt in ("json", "xml"):
            response = client.get(url.format(f=fmt))
            if fmt == "json":
                leaves = list(leaves_of_json(response.get_json()))
            else:
                leaves = list(leaves_of_xml(ET.fromstring(response.get_data())))
            checked[url.format(f=fmt)] = len(leaves)
            for leaf in leaves:
                for secret in SECRETS:
                    assert secret not in leaf, (url, fmt, leaf)
    for fmt in ("csv", "json"):
        text = client.get(f"/open311/bulk/requests.{fmt}").get_data(as_text=True)
        leaves = list(leaves_of_csv(text) if fmt == "csv" else leaves_of_json(json.loads(text)))
        checked[f"bulk.{fmt}"] = len(leaves)
        for leaf in leaves:
            assert not any(s in leaf for s in SECRETS), (fmt, leaf)
    satisfaction = client.get("/open311/v2/satisfaction.json")
    assert satisfaction.status_code == 200
    for leaf in leaves_of_json(satisfaction.get_json()):
        assert not any(s in leaf for s in SECRETS), ("satisfaction", leaf)
    # The walk saw the requests themselves, not only empty lists.
    assert checked["/open311/v2/requests.json?extensions=true"] > 60
    assert checked["bulk.csv"] > 40

    # Every GET route of the Open311 blueprint was visited.
    routes = {re.sub(r"<any\([^)]*\):fmt>", "<fmt>", r.rule) for r in app.url_map.iter_rules()
              if r.rule.startswith("/open311/") and "GET" in r.methods}
    visited = {"/open311/discovery.<fmt>", "/open311/v2/services.<fmt>",
               "/open311/v2/services/<code>.<fmt>", "/open311/v2/requests.<fmt>",
               "/open311/v2/requests/<request_id>.<fmt>", "/open311/v2/tokens/<token>.<fmt>",
               "/open311/bulk/requests.<fmt>", "/open311/v2/satisfaction.json"}
    assert routes == visited
