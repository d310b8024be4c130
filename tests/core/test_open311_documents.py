"""Open311 parameters and documents, without a database or HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo311 import open311
from geo311.catalogue import read_catalogue
from geo311.errors import InvalidRequest
from tests.conftest import examples

ZONE = ZoneInfo("America/Chicago")
NOW = datetime(2021, 6, 1, 12, tzinfo=UTC)
SERVICES = {s.code: s for s in read_catalogue("chicago")}


def q(**params):
    return open311.parse_request_query({k: [v] for k, v in params.items()}, NOW, ZONE)


def test_default_window_is_the_last_90_days():
    query = q()
    assert (query.start, query.end) == (NOW - timedelta(days=90), NOW)


def test_one_date_opens_a_90_day_window_from_it():
    assert q(start_date="2021-01-01T00:00:00Z").end == datetime(2021, 4, 1, tzinfo=UTC)
    assert q(end_date="2021-04-01T00:00:00Z").start == datetime(2021, 1, 1, tzinfo=UTC)


def test_a_bare_date_is_midnight_in_the_city():
    assert q(start_date="2021-01-01").start.isoformat() == "2021-01-01T00:00:00-06:00"


def test_exactly_90_days_is_allowed_and_one_second_more_is_not():
    q(start_date="2021-01-01T00:00:00Z", end_date="2021-04-01T00:00:00Z")
    with pytest.raises(InvalidRequest, match="90 days"):
        q(start_date="2021-01-01T00:00:00Z", end_date="2021-04-01T00:00:01Z")


def test_ids_override_and_are_deduplicated():
    query = q(service_request_id="7,7, 9", status="bogus-but-ignored")
    assert query.ids == (7, 9)


def test_both_statuses_mean_no_status_filter():
    assert q(status="open,closed").statuses == ()
    assert open311.parse_request_query({"status": ["open", "closed"]}, NOW, ZONE).statuses == ()


def test_repeated_single_parameter_is_refused():
    with pytest.raises(InvalidRequest, match="once"):
        open311.parse_request_query({"start_date": ["2021-01-01", "2021-01-02"]}, NOW, ZONE)


def test_format_datetime_uses_the_city_offset():
    assert open311.format_datetime(datetime(2021, 7, 1, 17, tzinfo=UTC), ZONE) == \
        "2021-07-01T12:00:00-05:00"


def test_answers_check_every_datatype():
    ska = SERVICES["SKA"]
    ok = open311.check_answers(ska, {"days_parked": ["4.5"], "plate": ["AB 123"],
                                     "last_moved": ["2021-01-01"]})
    assert ok == {"days_parked": ("4.5",), "plate": ("AB 123",), "last_moved": ("2021-01-01",)}
    with pytest.raises(InvalidRequest, match="days_parked.*number"):
        open311.check_answers(ska, {"days_parked": ["nan"]})
    graf = SERVICES["GRAF"]
    assert open311.check_answers(graf, {"surface": ["wood"], "where": ["garage", "fence"]}
                                 )["where"] == ("garage", "fence")
    with pytest.raises(InvalidRequest, match="repeats"):
        open311.check_answers(graf, {"surface": ["wood"], "where": ["garage", "garage"]})


def test_several_problems_are_reported_together():
    with pytest.raises(InvalidRequest) as err:
        open311.check_answers(SERVICES["GRAF"], {"where": ["moon"], "colour": ["red"]})
    text = err.value.message
    assert "surface] is required" in text and "moon" in text and "colour" in text


def test_xml_lists_use_the_spec_element_names():
    doc = open311.service_definition(SERVICES["GRAF"])
    root = ET.fromstring(open311.to_xml("service_definition", doc))
    assert [c.tag for c in root] == ["service_code", "attributes"]
    assert {c.tag for c in root.find("attributes")} == {"attribute"}
    assert {c.tag for c in root.find("attributes/attribute/values")} == {"value"}


def test_xml_escapes_markup_and_drops_characters_xml_cannot_carry():
    body = open311.to_xml("service_requests", [{"description": "<b>&\x07"}])
    assert b"&lt;b&gt;&amp;" in body
    assert ET.fromstring(body).find("request/description").text == "<b>&\ufffd"


def _element_tree_xml(root, document):
    """The reference writer: ElementTree, as ``to_xml`` was written before."""

    def fill(element, name, value):
        if isinstance(value, dict):
            for key, child in value.items():
                fill(ET.SubElement(element, key), key, child)
        elif isinstance(value, list | tuple):
            item = open311._ITEM.get(name, "item")
            for child in value:
                fill(ET.SubElement(element, item), item, child)
        elif isinstance(value, bool):
            element.text = "true" if value else "false"
        elif value is None:
            pass
        elif isinstance(value, float):
            element.text = repr(value)
        else:
            element.text = open311._NOT_XML.sub("\ufffd", str(value))

    element = ET.Element(root)
    fill(element, root, document)
    # ElementTree leaves a CR bare, which a parser reads back as LF; only text holds one.
    written = ET.tostring(element, encoding="utf-8").replace(b"\r", b"&#13;")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + written


_names = st.sampled_from(["service_request_id", "description", "districts", "values",
                          "attributes", "lat", "x"])
_leaves = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=False, allow_infinity=False))
_documents = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(_names, inner, max_size=4), max_leaves=30)


@settings(max_examples=examples(300), deadline=None)
@given(root=st.sampled_from(["service_requests", "services", "errors", "discovery"]),
       document=_documents)
def test_xml_text_writer_equals_element_tree(root, document):
    assert open311.to_xml(root, document) == _element_tree_xml(root, document)


def _as_parsed(value):
    """A JSON leaf as the XML parser reads it back: text, or None for an empty element."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return open311._NOT_XML.sub("\ufffd", str(value))


@settings(max_examples=examples(300), deadline=None)
@given(records=st.lists(st.dictionaries(
    st.sampled_from(["description", "status_notes", "address", "lat", "media_url"]),
    st.none() | st.text() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["a\r\nb", "\r", "tab\there", " lead", "trail "])), max_size=4))
def test_xml_reads_back_what_json_says(records):
    """Line breaks (CR LF, lone CR), tabs and nulls survive XML as JSON carries them."""
    root = ET.fromstring(open311.to_xml("service_requests", records))
    assert [{c.tag: c.text for c in r} for r in root] == \
        [{k: _as_parsed(v) for k, v in r.items()} for r in records]


def test_a_cr_is_written_as_a_character_reference():
    body = open311.to_xml("service_requests", [{"description": "a\r\nb\tc", "x": None}])
    assert b"a&#13;\nb\tc" in body and b"<x />" in body
    assert ET.fromstring(body).findtext("request/description") == "a\r\nb\tc"
