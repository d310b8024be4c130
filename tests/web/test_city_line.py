"""Reports on the city line are taken in; one set of rules judges a report on every channel."""

import re

import numpy as np
import pytest
import shapely
import shapely.ops
from pyproj import Geod
from sqlalchemy import select

from geo311.catalogue import load_catalogue, read_catalogue
from geo311.store import tables
from tests.conftest import load_shipped

V2 = "/open311/v2"
GEOD = Geod(ellps="WGS84")


@pytest.fixture
def chicago(app):
    store = app.extensions["geo311"].store
    load_shipped(store, "community_areas")
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    return store, store.accounts.create_api_key("tests")


def _outside_the_line(store, count: int, outside_m: float):
    """Points ``outside_m`` metres outside the service area's union, along its outer ring.

    Built as the City's geocoder puts addresses on a boundary street: on the line, a
    few centimetres off it. Checked independently of geo311: shapely says each is
    outside the union, and pyproj's geodesic distance to the nearest point of the ring
    is about ``outside_m``.
    """
    frame = store.layers.features("community_areas")
    union = shapely.union_all(frame.geometry.to_numpy())
    ring = max(getattr(union, "geoms", [union]), key=lambda g: g.area).exterior
    points = []
    for f in np.linspace(0.013, 0.987, count * 3):
        on = ring.interpolate(f, normalized=True)
        ahead = ring.interpolate(min(1.0, f + 1e-5), normalized=True)
        dx, dy = ahead.x - on.x, ahead.y - on.y
        scale = np.cos(np.radians(on.y))
        nx, ny = dy / scale, -dx * scale  # normal to the ring, in metric proportions
        for sign in (1, -1):
            az = np.degrees(np.arctan2(sign * nx * scale, sign * ny))
            lon, lat, _ = GEOD.fwd(on.x, on.y, az, outside_m)
            p = shapely.Point(lon, lat)
            if not union.covers(p):
                nearest = shapely.ops.nearest_points(ring, p)[0]
                _, _, d = GEOD.inv(lon, lat, nearest.x, nearest.y)
                if abs(d - outside_m) <= 0.05 + outside_m * 0.02:
                    points.append((lon, lat))
                break
        if len(points) == count:
            break
    assert len(points) == count
    return points


def test_reports_within_the_tolerance_of_the_city_line_are_taken_with_a_district(client,
                                                                                   chicago):
    store, key = chicago
    points = _outside_the_line(store, 15, 0.15)
    for lon, lat in points:
        r = client.post(f"{V2}/requests.json", data={
            "api_key": key, "service_code": "SDR", "lat": repr(lat), "long": repr(lon)})
        assert r.status_code == 201 or r.status_code == 200, r.get_data(as_text=True)
        request_id = int(r.get_json()[0]["service_request_id"])
        with store.engine.connect() as conn:
            rows = conn.execute(select(tables.request_districts.c.district_id,
                                       tables.request_districts.c.boundary_case).where(
                tables.request_districts.c.request_id == request_id)).all()
        assert len(rows) == 1 and rows[0][0] is not None and rows[0][1] is True
    assert store.requests.count() == 15


def test_a_report_fifty_metres_outside_is_refused_with_the_distance(client, chicago):
    store, key = chicago
    (lon, lat), = _outside_the_line(store, 1, 50.0)
    r = client.post(f"{V2}/requests.json", data={
        "api_key": key, "service_code": "SDR", "lat": repr(lat), "long": repr(lon)})
    assert r.status_code == 400
    said = r.get_json()[0]["description"]
    metres = int(re.search(r"(\d+) m outside the city limit", said).group(1))
    assert 49 <= metres <= 51, said
    assert "outside the service area" in said
    assert store.requests.count() == 0


GOOD = {"service_code": "SDR", "description": "Mattress in the alley"}
#: The same bad report, as each channel names its fields: (Open311 form, web form).
BAD_REPORTS = [
    ("HTML in the description", {"description": "<b>big</b> hole"}, "HTML or code"),
    ("javascript: in the description", {"description": "javascript:alert(1)"}, "HTML or code"),
    ("a NUL in the description", {"description": "hole\x00"}, "control characters"),
    ("a description too long", {"description": "x" * 4001}, "at most 4000"),
    ("a required question unanswered", {"service_code": "SCB"}, "attribute[nature] is required"),
    ("an answer not in the list", {"service_code": "SCB", "attribute[nature]": "moon"},
     "attribute[nature] was ['moon']"),
    ("a question the service does not ask", {"attribute[colour]": "red"}, "has no attributes"),
    ("an address too long", {"address": "1 N STATE ST " * 50}, "address"),
    ("a NUL in the address", {"address": "1 N STATE\x00 ST"}, "control character"),
    ("a NUL in the email", {"email": "a\x00@example.org"}, "control character"),
    ("an email that is not one", {"email": "not an email"}, "not an email address"),
]


@pytest.mark.parametrize("why,fields,message", BAD_REPORTS, ids=[b[0] for b in BAD_REPORTS])
def test_the_same_bad_report_gets_the_same_answer_from_open311_and_the_form(
        client, chicago, why, fields, message):
    store, key = chicago
    where = {"lat": "41.8837", "long": "-87.6321"}
    report = {**GOOD, **fields}
    address = report.pop("address", None)
    api = client.post(f"{V2}/requests.json", data={
        "api_key": key, **where, **report,
        **({"address_string": address} if address is not None else {})})
    form = client.post("/report", data={
        **where, **report, **({"address": address} if address is not None else {})})
    api_said = api.get_json()[0]["description"]
    assert api.status_code == 400 and message in api_said, api_said
    page = form.get_data(as_text=True)
    from html import unescape

    assert form.status_code == 400, page[:300]
    shown = re.search(r'<p id="report-error" class="error">(.*?)</p>', page, re.S).group(1)
    assert unescape(shown) == _same_words(api_said), (unescape(shown), api_said)
    assert store.requests.count() == 0


def _same_words(open311_said: str) -> str:
    """The form names the address field "address"; Open311 names it "address_string"."""
    return open311_said.replace("address_string", "address")


def test_the_form_takes_a_report_with_its_answers(client, chicago):
    store, _ = chicago
    r = client.post("/report", data={"service_code": "SCB", "lat": "41.8837",
                                     "long": "-87.6321", "attribute[nature]": _first_key(store)})
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    stored = store.requests.query(limit=5)[0]
    assert stored.service_code == "SCB"


def _first_key(store) -> str:
    scb = store.catalogue.service("SCB")
    return next(a for a in scb.attributes if a.code == "nature").values[0][0]
