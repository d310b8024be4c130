"""Open311 parameter rules checked on the core parsers, with no database or app.

Each rule keeps one HTTP contract case in ``tests/web`` (status, error format); the
variations of what arrives are checked here, where they cost nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from geo311 import open311
from geo311.errors import InvalidRequest
from geo311.model import Service

ZONE = ZoneInfo("America/Chicago")
NOW = datetime(2021, 6, 1, 12, tzinfo=UTC)
SCB = Service("SCB", "Sanitation Code Violation", "Sanitation")
LOOP = {"lat": ["41.8837"], "long": ["-87.6321"]}


def _query(params: dict[str, str]):
    return open311.parse_request_query({k: [v] for k, v in params.items()}, NOW, ZONE)


def _refusal(call) -> str:
    with pytest.raises(InvalidRequest) as refused:
        call()
    return str(refused.value)


@pytest.mark.parametrize("value", ["2021-01-01T00:00:00", "01/02/2021", "yesterday",
                                   "2021-02-30"])
def test_dates_without_time_zone_or_not_w3c_are_refused(value):
    _refusal(lambda: _query({"start_date": value}))


@pytest.mark.parametrize("query", ["start_date=0001-01-01T00:00:00+14:00",
                                   "end_date=9999-12-31T23:59:59-14:00",
                                   "updated_after=0001-01-01T00:00:00+14:00",
                                   "start_date=0001-01-01", "end_date=9999-12-31"])
def test_dates_at_the_edge_of_the_calendar_are_refused_saying_what_arrived(query):
    name, value = query.split("=")
    message = _refusal(lambda: _query({name: value}))
    assert name in message and value in message and "calendar" in message
    if name != "updated_after":  # the bulk export reads its dates with parse_datetime
        message = _refusal(lambda: open311.parse_datetime(value, name, ZONE))
        assert name in message and value in message and "calendar" in message


@pytest.mark.parametrize("extensions", ["false", "true"])
@pytest.mark.parametrize("name", ["page", "page_size", "radius", "lat", "long", "bbox"])
def test_numbers_too_long_to_parse_are_refused_saying_what_arrived(name, extensions):
    digits = "7" * 5000
    query = {"lat": "41.88", "long": "-87.63", "radius": "100"} \
        if name in ("lat", "long", "radius") else {}
    query[name] = digits if name != "bbox" else f"{digits},1,2,3"
    message = _refusal(lambda: _query({**query, "extensions": extensions}))
    assert message.startswith(name) and "7777" in message and "characters" in message
    assert len(message) < 300


@pytest.mark.parametrize("text", ["<b>big</b> hole", "see <script>alert(1)</script>",
                                  "a <img src=x onerror=y>", "&lt;b&gt;", "javascript:alert(1)"])
def test_a_description_with_html_is_refused(text):
    assert "HTML" in _refusal(
        lambda: open311.parse_submission({**LOOP, "description": [text]}, SCB))


def test_a_description_may_contain_line_breaks_and_comparisons():
    text = "2 < 3 and 5 > 4\r\nline two"
    assert open311.parse_submission({**LOOP, "description": [text]}, SCB).description == text


@pytest.mark.parametrize("url", ["ftp://x.org/a.jpg", "javascript:alert(1)", "/relative.jpg",
                                 "http://", "http://x.org/a b.jpg"])
def test_media_url_must_be_an_http_url(url):
    _refusal(lambda: open311.parse_submission({**LOOP, "media_url": [url]}, SCB))


def test_an_http_media_url_is_kept():
    url = "https://photos.example.org/311/abc.jpg"
    assert open311.parse_submission({**LOOP, "media_url": [url]}, SCB).media_url == url
