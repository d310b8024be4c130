"""The unmodified third-party client from PyPI (``georeport``) against a live server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.web.conftest import AUSTIN, LOOP, PILSEN

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends

georeport = pytest.importorskip("georeport")


def as_list(value):
    """The client returns xmltodict's output: one XML element comes back as a dict."""
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_client_round_trip(city, serve, backend_url, fmt):
    base = serve(backend_url) + "/open311/v2"
    client = georeport.GeoReport(base, output_format=fmt)

    services = as_list(client.get_service_list())
    assert len(services) == 75
    graf = next(s for s in services if s["service_code"] == "GRAF")
    assert graf["service_name"] == "Graffiti Removal Request"
    assert str(graf["metadata"]).lower() == "true" and graf["type"] == "realtime"

    definition = client.get_service_definition("GRAF")
    attributes = (definition["attributes"] if fmt == "json"
                  else as_list(definition["attributes"]["attribute"]))
    surface = next(a for a in attributes if a["code"] == "surface")
    values = surface["values"] if fmt == "json" else as_list(surface["values"]["value"])
    assert {"key": "brick", "name": "Brick"} in [dict(v) for v in values]

    # The client has no POST: post over HTTP as any app would, then read back with it.
    form = {"api_key": city.key, "service_code": "GRAF", "lat": LOOP[1], "long": LOOP[0],
            "description": f"Tag on the viaduct ({fmt})", "attribute[surface]": "concrete",
            "attribute[where][]": ["viaduct", "pole_or_box"], "email": "ann@example.org"}
    posted = requests.post(f"{base}/requests.{fmt}", data=form, timeout=30)
    assert posted.status_code == 200, posted.text
    rid = (posted.json()[0]["service_request_id"] if fmt == "json"
           else posted.text.split("<service_request_id>")[1].split("<")[0])

    one = client.get_service_request(rid)
    assert one["service_request_id"] == rid and one["service_code"] == "GRAF"
    assert one["description"] == f"Tag on the viaduct ({fmt})"
    assert float(one["lat"]) == pytest.approx(LOOP[1])
    assert "ann@example.org" not in str(one)

    city.report("SDR", at=AUSTIN)
    closed = city.report("SGQ", at=PILSEN)
    city.store.requests.set_status(closed.id, "closed")
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = as_list(client.get_service_requests(service_code="GRAF,SDR", status="open",
                                                start_date=start, end_date=end))
    assert sorted(r["service_code"] for r in found) == ["GRAF", "SDR"]
    by_id = as_list(client.get_service_requests(service_request_id=f"{rid},{closed.id}"))
    assert sorted(r["status"] for r in by_id) == ["closed", "open"]
    with pytest.raises(requests.HTTPError) as too_long:
        client.get_service_requests(start_date="2021-01-01T00:00:00Z",
                                    end_date="2021-06-01T00:00:00Z")
    assert too_long.value.response.status_code == 400
