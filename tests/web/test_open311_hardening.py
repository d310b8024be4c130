"""Open311 and the public lookups at their edges: one contract test per hardening item.

Each test is named after the rule it holds; all run on both backends.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from geo311 import open311
from geo311.errors import InvalidRequest, NotFound
from geo311.geodesy import haversine_m
from geo311.imports import import_file, read_mapping
from geo311.privacy import masked_point
from tests.conftest import examples
from tests.web.conftest import AUSTIN, LOOP

V2 = "/open311/v2"
#: A true point whose resolution-9 cell centre is 129 m away (west, a little north).
LON, LAT = -87.64123, 41.88456
CENTRE = masked_point(LON, LAT)
HUGE = "99999999999"
INTERNAL = "internal error; it has been logged"


def errors(response):
    """The Open311 error list of a response, in either format; fails on anything else."""
    if response.content_type.startswith("text/xml"):
        root = ET.fromstring(response.get_data())
        assert root.tag == "errors"
        found = [(int(e.findtext("code")), e.findtext("description")) for e in root]
    else:
        found = [(e["code"], e["description"]) for e in response.get_json()]
    assert found and all(d != INTERNAL for _, d in found), found
    return found


def ids(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [r["service_request_id"] for r in response.get_json()]


@pytest.fixture
def hidden(city):
    """A sensitive SDR request at (LON, LAT) and a plain SCB one at the same point."""
    city.store.catalogue.set_sensitive("SDR", True)
    secret = city.report("SDR", at=(LON, LAT))
    plain = city.report("SCB", at=(LON, LAT), attributes={"nature": ("other",)})
    return str(secret.id), str(plain.id)


# 1 -----------------------------------------------------------------------------------------

@pytest.mark.both_backends
def test_public_spatial_filters_match_a_sensitive_service_at_its_masked_point(client, hidden):
    secret, plain = hidden
    assert float(haversine_m(LON, LAT, CENTRE[0], CENTRE[1])) > 120
    # 200 m around a point 100 m east of the true one: holds it, not the cell centre.
    east = (LON + 0.0012, LAT)
    assert float(haversine_m(*east, LON, LAT)) < 200 < float(haversine_m(*east, *CENTRE))
    for extensions in ("", "&extensions=true"):
        def near(at, radius, extensions=extensions):
            return ids(client.get(f"{V2}/requests.json?lat={at[1]}&long={at[0]}"
                                  f"&radius={radius}{extensions}"))

        assert near(east, 200) == [plain]
        assert near((LON, LAT), 100) == [plain]
        assert near(CENTRE, 50) == [secret]

        def box(at, fmt="json", half=0.0005, extensions=extensions):
            return client.get(f"{V2}/requests.{fmt}?bbox={at[0] - half},{at[1] - half},"
                              f"{at[0] + half},{at[1] + half}{extensions}")

        assert ids(box((LON, LAT))) == [plain]
        found = box(CENTRE).get_json()
        assert [r["service_request_id"] for r in found] == [secret]
        assert (found[0]["long"], found[0]["lat"]) == CENTRE
        xml = ET.fromstring(box(CENTRE, "xml").get_data())
        assert [r.findtext("service_request_id") for r in xml] == [secret]
    # The report form's "already reported nearby" and the citizen map's circle alike.
    for path in ("/api/requests/nearby", "/api/requests/around"):
        got = client.get(f"{path}?lat={LAT}&long={LON}&radius_m=100").get_json()
        assert [r["service_request_id"] for r in got] == [plain], path
        got = client.get(f"{path}?lat={CENTRE[1]}&long={CENTRE[0]}&radius_m=50").get_json()
        assert [r["service_request_id"] for r in got] == [secret], path
        assert (got[0]["long"], got[0]["lat"]) == CENTRE
        assert got[0]["distance_m"] < 1
    # The bulk export has no spatial filter; its points are the masked ones.
    bulk = {r["service_request_id"]: r for r in client.get("/open311/bulk/requests.json")
            .get_json()}
    assert (bulk[secret]["long"], bulk[secret]["lat"]) == CENTRE


# 2 -----------------------------------------------------------------------------------------

@pytest.mark.both_backends
def test_ids_beyond_the_integer_column_are_simply_not_found(client, city):
    city.report()
    missing = "987654"
    for rid in (missing, HUGE, "9" * 25):
        assert ids(client.get(f"{V2}/requests.json?service_request_id={rid}")) == []
        for fmt in ("json", "xml"):
            response = client.get(f"{V2}/requests/{rid}.{fmt}")
            assert response.status_code == 404 and "does not exist" in errors(response)[0][1]
        api = client.get(f"/api/requests/{rid}")
        assert api.status_code == 404 and api.is_json
        assert "does not exist" in api.get_json()[0]["description"]
        page = client.get(f"/requests/{rid}")
        assert page.status_code == 404 and "text/html" in page.content_type
        post = client.post(f"{V2}/requests.json", data={
            "api_key": city.key, "service_code": "SDR", "address_id": rid})
        assert post.status_code == 400
        assert "not a stored address point" in errors(post)[0][1]
    assert city.store.requests.count() == 1


# 3 -----------------------------------------------------------------------------------------

# The other dates at the calendar's edges: tests/core/test_open311_params.py.
@pytest.mark.parametrize("query", ["start_date=0001-01-01T00:00:00%2B14:00"])
def test_dates_at_the_edge_of_the_calendar_are_400_saying_what_arrived(client, city, query):
    name, value = query.split("=")
    value = value.replace("%2B", "+")
    for url in (f"{V2}/requests.json?{query}", f"{V2}/requests.xml?{query}",
                f"/open311/bulk/requests.json?{query}", f"/open311/bulk/requests.csv?{query}"):
        if name == "updated_after" and "bulk" in url:
            continue
        response = client.get(url)
        assert response.status_code == 400, url
        message = errors(response)[0][1]
        assert name in message and value in message and "calendar" in message


@pytest.mark.both_backends
def test_the_90_day_window_still_holds_near_the_calendar_edge(client, city):
    response = client.get(f"{V2}/requests.json?start_date=0002-01-01T00:00:00Z"
                          "&end_date=9998-01-01T00:00:00Z")
    assert response.status_code == 400 and "90 days" in errors(response)[0][1]
    assert ids(client.get(f"{V2}/requests.json?start_date=0002-01-01T00:00:00Z")) == []
    assert ids(client.get(f"{V2}/requests.json?end_date=9998-01-01T00:00:00Z")) == []


# 4 -----------------------------------------------------------------------------------------

# The other numbers: tests/core/test_open311_params.py.
@pytest.mark.parametrize("name", ["bbox"])
def test_numbers_too_long_to_parse_are_400_saying_what_arrived(client, city, name):
    digits = "7" * 5000
    query = {"lat": "41.88", "long": "-87.63", "radius": "100"} \
        if name in ("lat", "long", "radius") else {}
    query[name] = digits if name != "bbox" else f"{digits},1,2,3"
    for extensions in ("false", "true"):
        response = client.get(f"{V2}/requests.json",
                              query_string={**query, "extensions": extensions})
        assert response.status_code == 400
        message = errors(response)[0][1]
        assert message.startswith(name) and "7777" in message and "characters" in message
        assert len(message) < 300


# 5 -----------------------------------------------------------------------------------------

def _form(city, **extra):
    return {"api_key": city.key, "service_code": "SDR", "lat": str(LOOP[1]),
            "long": str(LOOP[0]), **extra}


@pytest.mark.parametrize("name,values", [
    ("service_code", ["PHF", "SCB"]), ("lat", ["41.88", "41.89"]),
    ("long", ["-87.63", "-87.64"]), ("address_string", ["1 N State St", "2 N State St"]),
    ("client_request_id", ["a", "b"]), ("api_key", ["KEY", "KEY"]),
    ("jurisdiction_id", ["x", "y"]), ("extensions", ["true", "false"]),
    ("media_url", ["https://a.example/1.jpg", "https://a.example/2.jpg"])])
def test_a_single_valued_post_parameter_given_twice_is_400_naming_it(client, city, name,
                                                                      values):
    form = _form(city)
    form.pop(name, None)
    data = [(k, v) for k, v in form.items()] + [
        (name, city.key if v == "KEY" else v) for v in values]
    response = client.post(f"{V2}/requests.json", data=MultiDict(data))
    assert response.status_code == 400
    assert f"{name} was given 2 times" in errors(response)[0][1]
    assert city.store.requests.count() == 0


@pytest.mark.both_backends
def test_api_key_in_the_body_wins_over_the_query_string(client, city):
    response = client.post(f"{V2}/requests.json?api_key=not-a-key", data=_form(city))
    assert response.status_code == 200 and city.store.requests.count() == 1
    refused = client.post(f"{V2}/requests.json?api_key={city.key}",
                          data=_form(city, api_key="not-a-key"))
    assert refused.status_code == 403
    from_query = _form(city, lat=str(AUSTIN[1]), long=str(AUSTIN[0]))
    from_query.pop("api_key")
    assert client.post(f"{V2}/requests.json?api_key={city.key}", data=from_query
                       ).status_code == 200


@pytest.mark.both_backends
def test_get_list_parameters_given_twice_merge(client, city):
    a = city.report("SDR")
    b = city.report("SCB", at=AUSTIN, attributes={"nature": ("other",)})
    got = client.get(f"{V2}/requests.json?service_code=SDR&service_code=SCB&status=open"
                     f"&status=closed")
    assert sorted(ids(got)) == sorted([str(a.id), str(b.id)])
    assert sorted(ids(client.get(f"{V2}/requests.json?service_request_id={a.id}"
                                 f"&service_request_id={b.id}"))) == sorted([str(a.id),
                                                                            str(b.id)])


# 6 -----------------------------------------------------------------------------------------

def _multipart(boundary: str, fields: dict[str, str]) -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n'
             f"Content-Type: text/plain; charset=UTF-8\r\n\r\n{v}\r\n"
             for k, v in fields.items()]
    return ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8")


def test_multipart_with_an_unquoted_boundary_holding_equals_is_read(client, city):
    boundary = "===1796601530467==="
    body = _multipart(boundary, _form(city, description="Line one\r\nline two"))
    response = client.post(f"{V2}/requests.json", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 200, response.get_data(as_text=True)
    rid = response.get_json()[0]["service_request_id"]
    assert city.store.requests.get(int(rid)).description == "Line one\r\nline two"
    # Quoted, and with a charset after it, as other clients send it.
    again = client.post(f"{V2}/requests.xml", data=_multipart(boundary, _form(
        city, lat=str(AUSTIN[1]), long=str(AUSTIN[0]))),
        content_type=f'multipart/form-data; boundary={boundary}; charset=UTF-8')
    assert again.status_code == 200 and city.store.requests.count() == 2


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=abc",
                                          "multipart/form-data"])
def test_a_body_that_cannot_be_read_is_400_not_403(client, city, content_type):
    response = client.post(f"{V2}/requests.json", data=b"api_key=x&this is not multipart",
                           content_type=content_type)
    assert response.status_code == 400
    assert "could not be read as multipart/form-data" in errors(response)[0][1]


# 7 -----------------------------------------------------------------------------------------

@pytest.mark.both_backends
def test_strict_documents_carry_every_georeport_v2_field(client, city):
    r = city.report("SCB", attributes={"nature": ("other",)})
    city.store.requests.set_status(r.id, "open", note="Crew assigned")
    for url in (f"{V2}/requests.json", f"{V2}/requests/{r.id}.json",
                f"{V2}/requests.json?service_request_id={r.id}"):
        record = client.get(url).get_json()[0]
        assert tuple(record) == open311.REQUEST_FIELDS, url
        assert record["status_notes"] == "Crew assigned"
        assert record["agency_responsible"] == "Streets and Sanitation"
        assert record["service_notice"] is None and record["address_id"] is None
    root = ET.fromstring(client.get(f"{V2}/requests/{r.id}.xml").get_data())
    assert tuple(c.tag for c in root.find("request")) == open311.REQUEST_FIELDS
    assert root.findtext("request/status_notes") == "Crew assigned"
    extended = client.get(f"{V2}/requests/{r.id}.json?extensions=true").get_json()[0]
    assert tuple(extended) == (*open311.REQUEST_FIELDS, "extended_attributes")
    posted = client.post(f"{V2}/requests.json", data=_form(
        city, lat=str(AUSTIN[1]), long=str(AUSTIN[0]))).get_json()[0]
    assert tuple(posted) == open311.POST_FIELDS
    names = {e["name"] for e in client.get("/open311/discovery.json").get_json()[
        "endpoints"][0]["extensions"]}
    assert not names & set(open311.REQUEST_FIELDS)


# 8 -----------------------------------------------------------------------------------------

@pytest.mark.both_backends
def test_an_imported_request_is_updated_when_its_source_last_changed_it(app, client, city,
                                                                          tmp_path):
    src = tmp_path / "requests.csv"
    src.write_text(
        "sr_number,sr_type,sr_short_code,status,created_date,last_modified_date,closed_date,"
        "latitude,longitude\n"
        "SR12-1,Street Light Out,SLO,Completed,2012-03-01T08:00:00,2012-03-09T10:30:00,"
        "2012-03-05T16:00:00,41.8837,-87.6321\n"
        "SR12-2,Street Light Out,SLO,Completed,2012-04-01T08:00:00,,2012-04-02T09:15:00,"
        "41.8840,-87.6330\n"
        "SR12-3,Street Light Out,SLO,Open,2012-05-01T08:00:00,,,41.8850,-87.6340\n")
    summary = import_file(city.store, app.extensions["geo311"].context(), src,
                          read_mapping("chicago-311"))
    assert summary.stored == 3 and summary.rejected == []
    want = {"SR12-1": "2012-03-09T10:30:00-06:00", "SR12-2": "2012-04-02T09:15:00-05:00",
            "SR12-3": "2012-05-01T08:00:00-05:00"}
    for external_id, updated in want.items():
        stored = city.store.requests.get_by_external_id(external_id)
        assert stored.updated_datetime == datetime.fromisoformat(updated)
        record = client.get(f"{V2}/requests/{stored.id}.json").get_json()[0]
        assert record["updated_datetime"] == updated
    assert all(city.store.requests.get_by_external_id(e).updated_datetime.year == 2012 for e in want)


# 9 -----------------------------------------------------------------------------------------

@pytest.mark.both_backends
def test_common_client_parameters_apply_without_extensions_and_unknown_ones_are_ignored(
        client, city):
    loop = city.report(at=LOOP)
    west = city.report(at=AUSTIN)
    assert ids(client.get(f"{V2}/requests.json?lat={LOOP[1]}&long={LOOP[0]}&radius=500")
               ) == [str(loop.id)]
    assert ids(client.get(f"{V2}/requests.json?bbox=-87.8,41.85,-87.7,41.95")) == \
        [str(west.id)]
    assert ids(client.get(f"{V2}/requests.json?page_size=1&page=2")) == [str(loop.id)]
    unknown = "utm_source=app&foo[]=1&locale=en"
    for url in (f"{V2}/requests.json", f"{V2}/services.json", f"{V2}/services/SDR.json",
                f"{V2}/requests/{loop.id}.json", "/open311/discovery.json"):
        assert client.get(f"{url}?{unknown}").status_code == 200, url
    posted = client.post(f"{V2}/requests.json?{unknown}", data=_form(
        city, lat=str(LOOP[1] + 0.01), locale="en"))
    assert posted.status_code == 200
    for bad in ("radius=-5&lat=41.8&long=-87.6", "lat=north&long=-87.6&radius=5",
                "page=0", "page_size=abc", "bbox=1,2,3", "status=pending"):
        response = client.get(f"{V2}/requests.json?{bad}")
        assert response.status_code == 400, bad
        assert bad.split("=")[0] in errors(response)[0][1], bad


# 10 ----------------------------------------------------------------------------------------

def _xml_value(element):
    """An XML leaf as JSON would hold it: an empty element is null."""
    return element.text if element.text is not None else None


@pytest.mark.both_backends
def test_xml_and_json_agree_on_nulls_and_line_breaks(client, city):
    posted = client.post(f"{V2}/requests.json", data=_form(
        city, description="First line\r\nsecond\tline\rthird")).get_json()[0]
    rid = posted["service_request_id"]
    as_json = client.get(f"{V2}/requests/{rid}.json").get_json()[0]
    assert as_json["description"] == "First line\r\nsecond\tline\rthird"
    body = client.get(f"{V2}/requests/{rid}.xml").get_data()
    assert b"&#13;" in body
    element = ET.fromstring(body).find("request")
    for child in element:
        want = as_json[child.tag]
        got = _xml_value(child)
        assert got == (None if want is None else
                       str(want) if not isinstance(want, float) else repr(want)), child.tag
    services = {s["service_code"]: s for s in client.get(f"{V2}/services.json").get_json()}
    assert services["SDR"]["description"] is None  # was "" while records said null
    root = ET.fromstring(client.get(f"{V2}/services.xml").get_data())
    sdr = next(s for s in root if s.findtext("service_code") == "SDR")
    for child in sdr:
        want = services["SDR"][child.tag]
        assert _xml_value(child) == (None if want is None else
                                     str(want).lower() if isinstance(want, bool) else
                                     str(want)), child.tag


# 11 ----------------------------------------------------------------------------------------

NAMES = ["service_request_id", "service_code", "status", "start_date", "end_date",
         "extensions", "page", "page_size", "bbox", "lat", "long", "radius", "updated_after",
         "updated_before", "jurisdiction_id", "api_key", "address_string", "address_id",
         "description", "media_url", "email", "first_name", "client_request_id",
         "attribute[nature]", "attribute[x][]", "attribute", "device_id"]
_numbers = st.one_of(st.integers(-10**30, 10**30).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(str),
                     st.sampled_from(["41.88", "-87.63", "1e309", "0x10", "1_000", " 5 ",
                                      "7" * 5000, "١٢٣", "²", "-0", ".5", "5."]))
_dates = st.one_of(st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
                   st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                    "2021-02-30", "2021-01-01T25:00:00Z", "0000-01-01",
                                    "2021-01-01T00:00:00.1234567891Z", "2021-01-01T00:00+99:99"
                                    ]))
_values = st.one_of(st.text(max_size=40), _numbers, _dates,
                    st.sampled_from(["open", "closed", "open,closed", "true", "SDR", "SCB",
                                     HUGE, "1,2,3,4", "-88,41,-87,42", ""]))
_params = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=10)),
                          st.lists(_values, min_size=1, max_size=3), max_size=8)


def _core_calls(params):
    from zoneinfo import ZoneInfo as Zone

    from geo311.catalogue import read_catalogue

    zone = Zone("America/Chicago")
    now = datetime(2021, 6, 1, tzinfo=UTC)
    service = next(s for s in read_catalogue("chicago") if s.code == "SCB")
    yield lambda: open311.parse_request_query(params, now, zone)
    yield lambda: open311.parse_submission(params, service)
    yield lambda: open311.wants_extensions(params)
    for name, values in params.items():
        for value in values:
            yield lambda v=value, n=name: open311.parse_datetime(v, n, zone)


CORE_EXAMPLES = examples(300)
HTTP_EXAMPLES = examples(100)


@settings(max_examples=CORE_EXAMPLES, deadline=None)
@given(params=_params)
def test_fuzz_open311_parsers_give_a_value_or_a_request_error(params):
    for call in _core_calls(params):
        try:
            call()
        except (InvalidRequest, NotFound):
            pass


def _checked(response):
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        errors(response)  # the Open311 error format, and never the internal error


@pytest.mark.both_backends
@settings(max_examples=HTTP_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(params=_params, fmt=st.sampled_from(["json", "xml"]), rid=st.one_of(
    st.integers(-1, 10**25).map(str), st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%\x00"),
        min_size=1, max_size=12)), with_key=st.booleans())
def test_fuzz_open311_over_http_never_fails_with_a_server_error(client, city, params, fmt,
                                                                rid, with_key):
    query = MultiDict([(k, v) for k, values in params.items() for v in values])
    _checked(client.get(f"{V2}/requests.{fmt}", query_string=query))
    _checked(client.get(f"{V2}/requests/{rid}.{fmt}", query_string=query))
    _checked(client.get(f"{V2}/services.{fmt}", query_string=query))
    _checked(client.get("/open311/bulk/requests.json", query_string=query))
    # NUL bytes in POST text fields: handled in intake validation (another change).
    form = [(k.replace("\x00", ""), v.replace("\x00", "")) for k, v in query.items(multi=True)]
    _checked(client.post(f"{V2}/requests.{fmt}", data=MultiDict(form)))
    if with_key:  # a valid submission with the fuzzed parameters put over it
        base = {k: v for k, v in _form(city).items() if k not in query or k == "api_key"}
        answer = client.post(f"{V2}/requests.{fmt}", data=MultiDict(
            [*base.items(), *((k, v) for k, v in form if k != "api_key")]))
        event(f"POST with a key: {answer.status_code}")
        _checked(answer)


@pytest.mark.both_backends
def test_ogc_request_items_bbox_matches_a_sensitive_service_at_its_masked_point(client, hidden):
    secret, plain = hidden

    def box(at, half=0.0005):
        r = client.get("/ogc/collections/requests/items",
                       query_string={"bbox": f"{at[0] - half},{at[1] - half},"
                                             f"{at[0] + half},{at[1] + half}", "f": "json"})
        assert r.status_code == 200, r.get_data(as_text=True)
        doc = r.get_json()
        return sorted(str(f["id"]) for f in doc["features"]), doc["numberMatched"], doc

    found, matched, _ = box((LON, LAT))  # holds the true point, not the cell centre
    assert found == [plain] and matched == 1
    found, matched, doc = box(CENTRE)
    assert found == [secret] and matched == 1
    assert tuple(doc["features"][0]["geometry"]["coordinates"]) == pytest.approx(CENTRE)
