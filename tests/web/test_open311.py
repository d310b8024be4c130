"""Open311 GeoReport v2 contract: one test per rule of the specification, both backends."""

from __future__ import annotations

import csv
import json
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from werkzeug.datastructures import MultiDict

from geo311 import open311
from geo311.model import DATATYPES, Reporter
from tests.web.conftest import AUSTIN, LOOP, OUTSIDE, PILSEN

V2 = "/open311/v2"


def post(client, city, fmt="json", **form):
    data = {"api_key": city.key, "service_code": "SDR", "lat": str(LOOP[1]),
            "long": str(LOOP[0]), **form}
    return client.post(f"{V2}/requests.{fmt}", data={k: v for k, v in data.items()
                                                      if v is not None})


def xml(response):
    assert response.content_type == "text/xml; charset=utf-8"
    body = response.get_data()
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert b"xmlns" not in body
    return ET.fromstring(body)


def error_of(response):
    if response.content_type.startswith("text/xml"):
        root = xml(response)
        assert root.tag == "errors"
        return [(int(e.findtext("code")), e.findtext("description")) for e in root]
    data = response.get_json()
    assert isinstance(data, list)
    return [(e["code"], e["description"]) for e in data]


# -- formats ----------------------------------------------------------------------------------

def test_xml_has_declaration_no_namespace_and_text_xml_content_type(client, city):
    root = xml(client.get(f"{V2}/services.xml"))
    assert root.tag == "services" and {c.tag for c in root} == {"service"}


@pytest.mark.both_backends
def test_json_is_a_top_level_array_with_ids_as_strings(client, city):
    city.report()
    response = client.get(f"{V2}/requests.json")
    assert response.content_type == "application/json; charset=utf-8"
    data = response.get_json()
    assert isinstance(data, list) and len(data) == 1
    assert isinstance(data[0]["service_request_id"], str)
    assert isinstance(data[0]["lat"], float) and isinstance(data[0]["long"], float)


@pytest.mark.both_backends
def test_dates_are_w3c_with_a_time_zone(client, city):
    city.report()
    r = client.get(f"{V2}/requests.json").get_json()[0]
    for field in ("requested_datetime", "updated_datetime"):
        parsed = datetime.fromisoformat(r[field])
        assert parsed.tzinfo is not None and r[field][-6] in "+-"
        assert abs(parsed - datetime.now(UTC)) < timedelta(minutes=5)


def test_unknown_format_is_404(client, city):
    assert client.get(f"{V2}/services.html").status_code == 404


def test_errors_are_xml_for_xml_urls_and_json_otherwise(client, city):
    assert error_of(client.get(f"{V2}/services/NOPE.xml"))[0][0] == 404
    assert error_of(client.get(f"{V2}/services/NOPE.json"))[0][0] == 404


# -- discovery --------------------------------------------------------------------------------

def test_discovery_has_changeset_contact_key_service_and_endpoints(client, city, app):
    loaded = max(e["at"] for e in app.extensions["geo311"].store.audit.entries("service"))
    data = client.get("/open311/discovery.json").get_json()
    assert {"changeset", "contact", "key_service", "endpoints"} <= set(data)
    v2 = next(e for e in data["endpoints"] if e["specification"] == open311.SPECIFICATION)
    assert v2["url"].endswith("/open311/v2") and v2["type"] == "production"
    assert v2["formats"] == ["text/xml", "application/json"]
    changeset = datetime.fromisoformat(data["changeset"])
    assert changeset == loaded.replace(microsecond=0) and changeset <= datetime.now(UTC)
    root = xml(client.get("/open311/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.find("endpoints/endpoint/formats")] == v2["formats"]


def test_discovery_announces_extensions_and_the_bulk_endpoint(client, city):
    data = client.get("/open311/discovery.json").get_json()
    v2 = data["endpoints"][0]
    names = {e["name"] for e in v2["extensions"]}
    assert {"page", "bbox", "updated_after", "client_request_id",
            "extended_attributes.parent_service_request_id"} <= names
    assert any(e["specification"] == open311.BULK_SPECIFICATION for e in data["endpoints"])


# -- services ---------------------------------------------------------------------------------

def test_services_list_every_service_with_metadata_and_realtime_type(client, city):
    data = client.get(f"{V2}/services.json").get_json()
    assert len(data) == len(city.store.catalogue.services()) == 75
    scb = next(s for s in data if s["service_code"] == "SCB")
    assert scb["metadata"] is True and scb["type"] == "realtime" and scb["group"] == "Sanitation"
    assert next(s for s in data if s["service_code"] == "SDR")["metadata"] is False
    root = xml(client.get(f"{V2}/services.xml"))
    codes = [s.findtext("service_code") for s in root]
    assert codes == [s["service_code"] for s in data]
    assert root.find("service/metadata").text in ("true", "false")


def test_service_definition_lists_attributes_in_order_with_values(client, city):
    data = client.get(f"{V2}/services/GRAF.json").get_json()
    assert data["service_code"] == "GRAF"
    attrs = data["attributes"]
    assert [a["order"] for a in attrs] == sorted(a["order"] for a in attrs)
    surface = attrs[0]
    assert surface["datatype"] == "singlevaluelist" and surface["required"] is True
    assert surface["variable"] is True
    assert {"key": "brick", "name": "Brick"} in surface["values"]
    root = xml(client.get(f"{V2}/services/GRAF.xml"))
    assert root.tag == "service_definition"
    values = root.findall("attributes/attribute")[0].findall("values/value")
    assert [(v.findtext("key"), v.findtext("name")) for v in values][0] == ("brick", "Brick")


def test_shipped_catalogue_uses_all_six_datatypes(client, city):
    seen = set()
    for s in client.get(f"{V2}/services.json").get_json():
        if s["metadata"]:
            d = client.get(f"{V2}/services/{s['service_code']}.json").get_json()
            seen |= {a["datatype"] for a in d["attributes"]}
    assert seen == set(DATATYPES)


def test_service_definition_of_unknown_code_is_404(client, city):
    response = client.get(f"{V2}/services/NOPE.json")
    assert response.status_code == 404 and "NOPE" in error_of(response)[0][1]


# -- POST requests ----------------------------------------------------------------------------

def test_post_without_api_key_is_403(client, city):
    response = post(client, city, "xml", api_key=None)
    assert response.status_code == 403 and error_of(response)[0][0] == 403
    assert city.store.requests.count() == 0


def test_post_with_invalid_api_key_is_403(client, city):
    assert post(client, city, api_key="not-a-key").status_code == 403


@pytest.mark.both_backends
def test_post_with_revoked_api_key_is_403(client, city):
    assert post(client, city).status_code == 200
    city.store.accounts.revoke_api_key("tests")
    response = post(client, city)
    assert response.status_code == 403 and "revoked" in error_of(response)[0][1]
    assert city.store.requests.count() == 1


def test_post_without_service_code_is_400(client, city):
    assert post(client, city, service_code=None).status_code == 400


def test_post_with_unknown_service_code_is_404(client, city):
    response = post(client, city, service_code="NOPE")
    assert response.status_code == 404 and city.store.requests.count() == 0


def test_post_must_be_form_encoded(client, city):
    response = client.post(f"{V2}/requests.json", json={"api_key": city.key,
                                                        "service_code": "SDR"})
    assert response.status_code == 400 and "x-www-form-urlencoded" in error_of(response)[0][1]


def test_post_without_location_is_400(client, city):
    response = post(client, city, lat=None, long=None)
    assert response.status_code == 400 and "location" in error_of(response)[0][1]


def test_post_with_lat_but_no_long_is_400(client, city):
    assert post(client, city, long=None).status_code == 400


def test_post_location_outside_the_service_area_is_400(client, city):
    response = post(client, city, lat=str(OUTSIDE[1]), long=str(OUTSIDE[0]))
    assert response.status_code == 400 and "outside the service area" in error_of(response)[0][1]
    assert city.store.requests.count() == 0


@pytest.mark.both_backends
def test_post_returns_a_list_with_service_request_id_and_notice(client, city):
    data = post(client, city, description="Mattresses\nin the alley").get_json()
    assert isinstance(data, list) and len(data) == 1
    stored = city.store.requests.get(int(data[0]["service_request_id"]))
    assert stored.description == "Mattresses\nin the alley"
    assert "account_id" in data[0] and data[0]["account_id"] is None
    root = xml(post(client, city, "xml", lat=str(AUSTIN[1]), long=str(AUSTIN[0])))
    assert root.tag == "service_requests" and root[0].tag == "request"
    assert root[0].findtext("service_request_id").isdigit()
    assert "Streets and Sanitation" in root[0].findtext("service_notice")


def test_post_records_the_clients_language_for_mail_to_the_reporter(client, city):
    data = {"api_key": city.key, "service_code": "SDR", "lat": str(LOOP[1]),
            "long": str(LOOP[0]), "email": "ola@example.org"}
    made = client.post(f"{V2}/requests.json", data=data,
                       headers={"Accept-Language": "pl-PL,pl;q=0.9,en;q=0.4"}).get_json()
    request_id = int(made[0]["service_request_id"])
    assert city.store.requests.reporters_of(request_id)[0].language == "pl"
    assert [(r["email"], r["language"]) for r in city.store.outbox.rows(request_id)] == [
        ("ola@example.org", "pl")]
    plain = post(client, city, email="bo@example.org", lat=str(AUSTIN[1]),
                 long=str(AUSTIN[0])).get_json()  # no Accept-Language: the city's default
    assert city.store.outbox.rows(int(plain[0]["service_request_id"]))[0]["language"] == "en"


@pytest.mark.both_backends
def test_post_keeps_address_string_with_lat_long(client, city):
    data = post(client, city, address_string="1200 W 18TH ST").get_json()
    assert city.store.requests.get(int(data[0]["service_request_id"])).address == "1200 W 18TH ST"


def test_post_description_over_4000_characters_is_400(client, city):
    assert post(client, city, description="x" * 4000).status_code == 200
    response = post(client, city, description="x" * 4001)
    assert response.status_code == 400 and "4001" in error_of(response)[0][1]


# Every variation of these parameter rules is checked in tests/core/test_open311_params.py;
# here one case each keeps the HTTP contract (status and error document).
@pytest.mark.parametrize("text", ["see <script>alert(1)</script>"])
def test_post_description_with_html_is_400(client, city, text):
    response = post(client, city, description=text)
    assert response.status_code == 400 and "HTML" in error_of(response)[0][1]


def test_post_description_may_contain_line_breaks_and_comparisons(client, city):
    assert post(client, city, description="2 < 3 and 5 > 4\r\nline two").status_code == 200


@pytest.mark.parametrize("url", ["javascript:alert(1)"])
def test_post_media_url_must_be_an_http_url(client, city, url):
    assert post(client, city, media_url=url).status_code == 400


@pytest.mark.both_backends
def test_post_media_url_is_stored_and_shown(client, city):
    url = "https://photos.example.org/311/abc.jpg"
    rid = post(client, city, media_url=url).get_json()[0]["service_request_id"]
    assert client.get(f"{V2}/requests/{rid}.json").get_json()[0]["media_url"] == url


def test_post_required_attribute_missing_is_400(client, city):
    response = post(client, city, service_code="SCB")
    assert response.status_code == 400 and "attribute[nature] is required" in \
        error_of(response)[0][1]


def test_post_singlevaluelist_value_must_be_a_listed_key(client, city):
    assert post(client, city, service_code="SCB", **{"attribute[nature]": "rats"}
                ).status_code == 400
    assert post(client, city, service_code="SCB", **{"attribute[nature]": "garbage_in_yard"}
                ).status_code == 200


def test_post_singlevaluelist_takes_one_value(client, city):
    response = client.post(f"{V2}/requests.json", data=MultiDict([
        ("api_key", city.key), ("service_code", "SCB"), ("lat", str(LOOP[1])), ("long", str(LOOP[0])),
        ("attribute[nature][]", "other"), ("attribute[nature][]", "standing_water")]))
    assert response.status_code == 400 and "takes one value" in error_of(response)[0][1]


@pytest.mark.both_backends
def test_post_multivaluelist_takes_several_values_and_stores_them(client, city):
    response = client.post(f"{V2}/requests.json", data=MultiDict([
        ("api_key", city.key), ("service_code", "GRAF"), ("lat", str(LOOP[1])), ("long", str(LOOP[0])),
        ("attribute[surface]", "brick"), ("attribute[where][]", "garage"),
        ("attribute[where][]", "fence")]))
    assert response.status_code == 200, response.get_data(as_text=True)
    rid = int(response.get_json()[0]["service_request_id"])
    assert city.store.requests.answers(rid) == {"surface": ["brick"],
                                                "where": ["garage", "fence"]}


def test_post_multivaluelist_values_must_all_be_listed(client, city):
    response = client.post(f"{V2}/requests.json", data=MultiDict([
        ("api_key", city.key), ("service_code", "GRAF"), ("lat", str(LOOP[1])), ("long", str(LOOP[0])),
        ("attribute[surface]", "brick"), ("attribute[where][]", "garage"),
        ("attribute[where][]", "roof")]))
    assert response.status_code == 400 and "roof" in error_of(response)[0][1]


def test_post_number_string_and_datetime_attributes_are_checked(client, city):
    def ska(**answers):
        form = {"service_code": "SKA", "attribute[plate]": "AB1234",
                "attribute[days_parked]": "9"}
        form.update({f"attribute[{k}]": v for k, v in answers.items()})
        return post(client, city, **form)

    assert ska(days_parked="many").status_code == 400
    assert ska(last_moved="last week").status_code == 400
    assert ska(plate="AB\n12").status_code == 400
    ok = ska(last_moved="2021-01-01T08:00:00-06:00")
    assert ok.status_code == 200
    rid = int(ok.get_json()[0]["service_request_id"])
    assert city.store.requests.answers(rid)["days_parked"] == ["9"]


def test_post_text_attribute_may_have_line_breaks(client, city):
    response = post(client, city, service_code="BBA",
                    **{"attribute[details]": "Porch\nrailing loose"})
    assert response.status_code == 200


def test_post_unknown_or_informational_attribute_is_400(client, city):
    assert post(client, city, **{"attribute[colour]": "red"}).status_code == 400
    assert post(client, city, service_code="PHF", **{"attribute[info]": "x"}).status_code == 400


@pytest.mark.both_backends
def test_post_stores_reporter_fields_as_personal_data(client, city):
    rid = post(client, city, email="ann@example.org", first_name="Ann", last_name="Lee",
               phone="312-555-0100", device_id="dev-1", account_id="acct-1"
               ).get_json()[0]["service_request_id"]
    reporter = city.store.requests.reporters_of(int(rid))[0]
    assert (reporter.email, reporter.first_name, reporter.last_name, reporter.phone,
            reporter.device_id, reporter.account_id) == (
        "ann@example.org", "Ann", "Lee", "312-555-0100", "dev-1", "acct-1")


def test_post_bad_email_or_overlong_reporter_field_is_400(client, city):
    assert post(client, city, email="not an email").status_code == 400
    assert post(client, city, phone="5" * 41).status_code == 400
    assert city.store.requests.count() == 0


@pytest.mark.both_backends
def test_duplicate_post_tells_the_client_it_joined_the_earlier_request(client, city):
    first = post(client, city).get_json()[0]["service_request_id"]
    second = post(client, city, extensions="true").get_json()[0]
    assert second["service_request_id"] != first
    assert f"already reported as request {first}" in second["service_notice"]
    assert second["extended_attributes"] == {"duplicate": True,
                                             "parent_service_request_id": first}
    assert city.store.requests.get(int(first)).reporter_count == 2


# -- GET requests -----------------------------------------------------------------------------

@pytest.mark.both_backends
def test_get_requests_defaults_to_the_last_90_days(client, city):
    now = datetime.now(UTC)
    old = city.report(requested_datetime=now - timedelta(days=91), at=AUSTIN)
    recent = city.report(requested_datetime=now - timedelta(days=89))
    ids = [r["service_request_id"] for r in client.get(f"{V2}/requests.json").get_json()]
    assert ids == [str(recent.id)]
    start = (now - timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ids = [r["service_request_id"]
           for r in client.get(f"{V2}/requests.json?start_date={start}").get_json()]
    assert ids == [str(recent.id), str(old.id)]


def test_date_range_over_90_days_is_400(client, city):
    response = client.get(f"{V2}/requests.xml?start_date=2021-01-01T00:00:00Z"
                          "&end_date=2021-04-02T00:00:00Z")
    assert response.status_code == 400 and "90 days" in error_of(response)[0][1]
    assert client.get(f"{V2}/requests.xml?start_date=2021-01-01T00:00:00Z"
                      "&end_date=2021-04-01T00:00:00Z").status_code == 200


def test_end_date_before_start_date_is_400(client, city):
    assert client.get(f"{V2}/requests.json?start_date=2021-02-01T00:00:00Z"
                      "&end_date=2021-01-01T00:00:00Z").status_code == 400


@pytest.mark.parametrize("value", ["2021-01-01T00:00:00"])
def test_date_without_time_zone_or_not_w3c_is_400(client, city, value):
    assert client.get(f"{V2}/requests.json?start_date={value}").status_code == 400


@pytest.mark.both_backends
def test_service_request_id_list_overrides_every_other_argument(client, city):
    a = city.report(requested_datetime=datetime.now(UTC) - timedelta(days=400))
    b = city.report("SCB", at=AUSTIN, attributes={"nature": ("other",)})
    response = client.get(f"{V2}/requests.json?service_request_id={a.id},{b.id}"
                          "&service_code=GRAF&status=closed&start_date=2001-01-01T00:00:00Z")
    assert sorted(r["service_request_id"] for r in response.get_json()) == \
        sorted([str(a.id), str(b.id)])


@pytest.mark.both_backends
def test_service_code_list_filters_comma_delimited(client, city):
    city.report("SDR")
    city.report("SGQ", at=AUSTIN)
    city.report("SCC", at=PILSEN)
    codes = {r["service_code"] for r in
             client.get(f"{V2}/requests.json?service_code=SDR,SGQ").get_json()}
    assert codes == {"SDR", "SGQ"}


@pytest.mark.both_backends
def test_status_filter_returns_only_that_status(client, city):
    a = city.report()
    b = city.report(at=AUSTIN)
    city.store.requests.set_status(b.id, "closed", note="Removed")
    opened = client.get(f"{V2}/requests.json?status=open").get_json()
    closed = client.get(f"{V2}/requests.xml?status=closed")
    assert [r["service_request_id"] for r in opened] == [str(a.id)]
    assert [r.findtext("status") for r in xml(closed)] == ["closed"]
    both = client.get(f"{V2}/requests.json?status=open,closed").get_json()
    assert len(both) == 2


def test_invalid_status_is_400(client, city):
    assert client.get(f"{V2}/requests.json?status=pending").status_code == 400


@pytest.mark.both_backends
def test_results_are_newest_first_and_at_most_1000(client, city):
    now = datetime.now(UTC)
    n = 1005
    frame = pd.DataFrame({
        "external_id": [f"x{i}" for i in range(n)], "external_parent_id": None,
        "source": "seed", "service_code": "SDR", "status": "open", "status_notes": "",
        "description": "", "address": "", "zipcode": "", "geocode_match": "reported",
        "outside_service_area": False,
        "requested_datetime": [now - timedelta(minutes=i) for i in range(n)],
        "updated_datetime": now, "closed_datetime": pd.NaT,
        "lon": LOOP[0], "lat": LOOP[1]})
    city.store.requests.add_many(frame)
    data = client.get(f"{V2}/requests.json").get_json()
    assert len(data) == 1000
    times = [datetime.fromisoformat(r["requested_datetime"]) for r in data]
    assert times == sorted(times, reverse=True)
    assert abs(times[0] - now) < timedelta(seconds=2)


@pytest.mark.both_backends
def test_get_request_by_id_is_a_list_of_one(client, city):
    r = city.report(description="Tyres")
    data = client.get(f"{V2}/requests/{r.id}.json").get_json()
    assert isinstance(data, list) and len(data) == 1
    assert data[0]["service_request_id"] == str(r.id) and data[0]["description"] == "Tyres"
    root = xml(client.get(f"{V2}/requests/{r.id}.xml"))
    assert root.tag == "service_requests" and root.find("request/long").text == str(LOOP[0])


@pytest.mark.both_backends
def test_get_request_with_unknown_id_is_404(client, city):
    assert client.get(f"{V2}/requests/999999.json").status_code == 404
    assert client.get(f"{V2}/requests/abc.xml").status_code == 404


def test_tokens_are_404_because_every_service_is_realtime(client, city):
    response = client.get(f"{V2}/tokens/123.json")
    assert response.status_code == 404 and "realtime" in error_of(response)[0][1]


def test_unknown_jurisdiction_is_404(app, client, city):
    app.config["OPEN311_JURISDICTION_ID"] = "cityofchicago.org"
    assert client.get(f"{V2}/services.json?jurisdiction_id=cityofchicago.org").status_code == 200
    assert client.get(f"{V2}/services.json").status_code == 200
    assert client.get(f"{V2}/services.json?jurisdiction_id=nyc.gov").status_code == 404


# -- extensions -------------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["page=2", "page_size=5", "bbox=-88,41,-87,42",
                                   "lat=41.8&long=-87.6&radius=100",
                                   "updated_after=2021-01-01T00:00:00Z"])
@pytest.mark.both_backends
def test_extension_parameters_apply_without_extensions_true(client, city, query):
    city.report(at=LOOP)
    city.report(at=AUSTIN)
    plain = client.get(f"{V2}/requests.json?{query}")
    extended = client.get(f"{V2}/requests.json?{query}&extensions=true")
    assert plain.status_code == extended.status_code == 200
    assert [r["service_request_id"] for r in plain.get_json()] == \
        [r["service_request_id"] for r in extended.get_json()]


@pytest.mark.both_backends
def test_extensions_page_and_page_size(client, city):
    made = [city.report(at=at, requested_datetime=datetime.now(UTC) - timedelta(hours=i))
            for i, at in enumerate((LOOP, AUSTIN, PILSEN))]
    pages = [client.get(f"{V2}/requests.json?extensions=true&page_size=2&page={p}").get_json()
             for p in (1, 2, 3)]
    assert [[r["service_request_id"] for r in p] for p in pages] == \
        [[str(made[0].id), str(made[1].id)], [str(made[2].id)], []]
    assert client.get(f"{V2}/requests.json?extensions=true&page_size=1001").status_code == 400
    assert client.get(f"{V2}/requests.json?extensions=true&page=0").status_code == 400


@pytest.mark.both_backends
def test_extensions_bbox_filter(client, city):
    city.report(at=LOOP)
    west = city.report(at=AUSTIN)
    data = client.get(f"{V2}/requests.json?extensions=true&bbox=-87.8,41.85,-87.7,41.95"
                      ).get_json()
    assert [r["service_request_id"] for r in data] == [str(west.id)]
    assert client.get(f"{V2}/requests.json?extensions=true&bbox=1,2,3").status_code == 400


@pytest.mark.both_backends
def test_extensions_lat_long_radius_filter_in_metres(client, city):
    loop = city.report(at=LOOP)
    city.report(at=PILSEN)
    near = client.get(f"{V2}/requests.json?extensions=true&lat={LOOP[1]}&long={LOOP[0]}"
                      "&radius=4000").get_json()
    assert [r["service_request_id"] for r in near] == [str(loop.id)]
    wide = client.get(f"{V2}/requests.json?extensions=true&lat={LOOP[1]}&long={LOOP[0]}"
                      "&radius=5000").get_json()
    assert len(wide) == 2
    assert client.get(f"{V2}/requests.json?extensions=true&lat=41&long=-87"
                      ).status_code == 400


@pytest.mark.both_backends
def test_extensions_updated_after_and_before(client, city):
    a = city.report()
    b = city.report(at=AUSTIN)
    closed = city.store.requests.set_status(b.id, "closed")
    cut = (closed.updated_datetime - timedelta(microseconds=1)).isoformat()
    assert a.updated_datetime <= datetime.fromisoformat(cut)

    def ids(**q):
        got = client.get(f"{V2}/requests.json", query_string={"extensions": "true", **q})
        return [r["service_request_id"] for r in got.get_json()]

    assert ids(updated_after=cut) == [str(b.id)]
    assert ids(updated_before=cut) == [str(a.id)]


@pytest.mark.both_backends
def test_extensions_add_districts_duplicates_notes_agency_and_expected_time(client, city):
    parent = city.report()
    child = city.report()
    city.store.requests.set_status(parent.id, "open", note="Crew assigned")
    plain = client.get(f"{V2}/requests/{child.id}.json").get_json()[0]
    assert "extended_attributes" not in plain
    assert {"status_notes", "agency_responsible", "expected_datetime"} <= set(plain)
    data = {r["service_request_id"]: r for r in client.get(
        f"{V2}/requests.json?extensions=true").get_json()}
    c, p = data[str(child.id)], data[str(parent.id)]
    assert c["extended_attributes"]["duplicate"] is True
    assert c["extended_attributes"]["parent_service_request_id"] == str(parent.id)
    assert p["extended_attributes"]["reporter_count"] == 2
    assert p["extended_attributes"]["districts"] == [{"layer": "city", "id": "east"}]
    assert p["status_notes"] == "Crew assigned"
    assert p["agency_responsible"] == "Streets and Sanitation"
    assert "expected_datetime" in p
    root = xml(client.get(f"{V2}/requests/{child.id}.xml?extensions=true"))
    ext = root.find("request/extended_attributes")
    assert ext.findtext("duplicate") == "true"
    assert ext.findtext("parent_service_request_id") == str(parent.id)
    assert ext.find("districts/district/layer").text == "city"


@pytest.mark.both_backends
def test_expected_datetime_is_shown_when_set(client, city):
    from sqlalchemy import update

    from geo311.store import tables as t

    r = city.report()
    due = datetime(2030, 1, 2, 18, tzinfo=UTC)
    with city.store.engine.begin() as conn:
        conn.execute(update(t.service_requests).where(t.service_requests.c.id == r.id)
                     .values(expected_datetime=due))
    data = client.get(f"{V2}/requests/{r.id}.json?extensions=true").get_json()[0]
    assert datetime.fromisoformat(data["expected_datetime"]) == due


@pytest.mark.both_backends
def test_client_request_id_returns_the_same_request_without_a_second_insert(client, city):
    first = post(client, city, extensions="true", client_request_id="app-77").get_json()[0]
    again = post(client, city, extensions="true", client_request_id="app-77").get_json()[0]
    assert again["service_request_id"] == first["service_request_id"]
    assert city.store.requests.count() == 1
    other = post(client, city, extensions="true", client_request_id="app-78",
                 lat=str(AUSTIN[1]), long=str(AUSTIN[0])).get_json()[0]
    assert other["service_request_id"] != first["service_request_id"]


@pytest.mark.both_backends
def test_client_request_id_works_without_extensions(client, city):
    first = post(client, city, client_request_id="app-1").get_json()[0]
    again = post(client, city, client_request_id="app-1").get_json()[0]
    assert again["service_request_id"] == first["service_request_id"]
    assert city.store.requests.count() == 1


@pytest.mark.both_backends
def test_client_request_id_is_per_api_key(client, city):


    other_key = city.store.accounts.create_api_key("other app")
    a = post(client, city, extensions="true", client_request_id="same").get_json()[0]
    b = post(client, city, extensions="true", client_request_id="same", api_key=other_key,
             lat=str(AUSTIN[1]), long=str(AUSTIN[0])).get_json()[0]
    assert a["service_request_id"] != b["service_request_id"]


@pytest.mark.both_backends
def test_client_request_id_sent_twice_at_once_stores_one_request(app, city):
    barrier = threading.Barrier(4)
    answers = []

    def send():
        c = app.test_client()
        barrier.wait()
        answers.append(post(c, city, extensions="true", client_request_id="burst"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.get_json()[0]["service_request_id"] for a in answers}) == 1
    assert city.store.requests.count() == 1


@pytest.mark.both_backends
def test_failed_submission_releases_its_client_request_id(client, city):
    bad = post(client, city, extensions="true", client_request_id="retry-me",
               lat=str(OUTSIDE[1]), long=str(OUTSIDE[0]))
    assert bad.status_code == 400
    good = post(client, city, extensions="true", client_request_id="retry-me")
    assert good.status_code == 200 and city.store.requests.count() == 1


@pytest.mark.both_backends
def test_rate_limit_per_api_key_is_429_with_retry_after(app, client, city):


    app.config["OPEN311_POST_LIMIT"] = "3/60"
    spots = [(LOOP[0] + i * 0.01, LOOP[1]) for i in range(4)]
    codes = [post(client, city, lat=str(y), long=str(x)).status_code for x, y in spots]
    assert codes == [200, 200, 200, 429]
    limited = post(client, city, "xml")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert error_of(limited)[0][0] == 429
    other = city.store.accounts.create_api_key("another client")
    assert post(client, city, api_key=other, lat=str(AUSTIN[1]),
                long=str(AUSTIN[0])).status_code == 200
    assert city.store.requests.count() == 4


@pytest.mark.both_backends
def test_rate_limit_is_shared_by_every_server_process(app, client, city, app_for):
    """Two apps over one database stand for two workers: the key's limit is one limit."""
    other = app_for(city.store)
    for a in (app, other):
        a.config["OPEN311_POST_LIMIT"] = "4/60"
    clients = [client, other.test_client()]
    codes = [post(clients[i % 2], city, lat=str(LOOP[1]), long=str(LOOP[0] + i * 0.01))
             .status_code for i in range(6)]
    assert codes == [200, 200, 200, 200, 429, 429]
    assert city.store.requests.count() == 4


def test_rate_limit_window_slides(tmp_path):
    """The previous minute still counts, less as it ages; the wait says when room returns."""
    from geo311.errors import TooManyRequests
    from geo311.store import open_store


    store = open_store(f"sqlite:///{tmp_path / 'limits.sqlite'}")
    store.schema.init()
    store.accounts.create_api_key("k")
    kid = next(k.id for k in store.accounts.api_keys() if k.name == "k")
    t0 = datetime(2026, 1, 1, 12, 0, 50, tzinfo=UTC)  # 50 s into a 60 s window
    for _ in range(3):
        store.accounts.check_rate(kid, 3, 60, now=t0)
    with pytest.raises(TooManyRequests) as late:
        store.accounts.check_rate(kid, 3, 60, now=t0)
    assert 1 <= late.value.retry_after_s <= 60
    # 15 s later (5 s into the next window) the 4 calls before weigh 4 * 55/60 = 3.7.
    with pytest.raises(TooManyRequests):
        store.accounts.check_rate(kid, 3, 60, now=t0 + timedelta(seconds=15))
    # 50 s into the next window they weigh 4 * 10/60 = 0.7, plus this window's 2 calls.
    store.accounts.check_rate(kid, 3, 60, now=t0 + timedelta(seconds=60))
    store.dispose()


# -- bulk -------------------------------------------------------------------------------------

@pytest.mark.both_backends
def test_bulk_export_csv_and_json_has_public_fields_only(client, city):
    city.report(description="Couch", reporter=Reporter(
        "Ann", "Lee", "ann@example.org", "312-555-0100", "dev-1", "acct-1"))
    city.report(at=AUSTIN, requested_datetime=datetime.now(UTC) - timedelta(days=400))
    text = client.get("/open311/bulk/requests.csv").get_data(as_text=True)
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == 2 and list(rows[0]) == list(open311.BULK_FIELDS)
    data = client.get("/open311/bulk/requests.json").get_json()
    assert [r["service_request_id"] for r in data] == [r["service_request_id"] for r in rows]
    assert data[0]["agency_responsible"] == "Streets and Sanitation"
    for secret in ("Ann", "Lee", "ann@example.org", "312-555-0100", "dev-1", "acct-1"):
        assert secret not in text and secret not in json.dumps(data)
    recent = client.get("/open311/bulk/requests.json", query_string={"start_date": (datetime.now(UTC) - timedelta(days=1))
                                      .isoformat()}).get_json()
    assert [r["description"] for r in recent] == ["Couch"]


@pytest.mark.parametrize("value", ["abc", "0/60", "60", "5/0", "2.5/60"])
def test_a_bad_post_limit_stops_start_up_naming_it(monkeypatch, tmp_path, value):
    from geo311.config import Settings
    from geo311.errors import ConfigError
    from geo311_web import create_app

    monkeypatch.setenv("GEO311_OPEN311_POST_LIMIT", value)
    with pytest.raises(ConfigError, match=f"GEO311_OPEN311_POST_LIMIT was '{value}'"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite'}",
                            instance_path=tmp_path))
