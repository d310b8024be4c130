"""The CAP 1.2 alerts, the CAP index and the Atom feed: every alert valid against the
official OASIS CAP-v1.2.xsd (tests/data), whatever its messages hold."""

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import shapely
from lxml import etree
from sqlalchemy import update

from geo311 import cap
from geo311.cap import polygons
from geo311.notices import Area, end_notice, post_notice
from geo311.store import tables as t
from geo311.store.rows import now_utc
from tests.web.conftest import EAST, WEST

XSD = Path(__file__).resolve().parents[1] / "data" / "CAP-v1.2.xsd"
CAP = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
ATOM = {"a": "http://www.w3.org/2005/Atom"}
AREA = shapely.box(-87.645, 41.875, -87.620, 41.895)
HOSTILE = ('Flooding <script>alert("x")</script> & <![CDATA[ ]]> \'quoted\' '
           '&amp; &#0; \u202eevil\u202c 🌊 line\nbreak')
MESSAGES = {"en": HOSTILE, "es": "Inundación ¡cuidado! <b>", "pl": "Powódź: uwaga & <i>",
            "zh": "洪水警告 <>&"}


@pytest.fixture(scope="module")
def schema():
    return etree.XMLSchema(etree.parse(str(XSD)))


def _valid(schema, body: bytes):
    document = etree.fromstring(body)
    assert schema.validate(document), schema.error_log
    return document


def _texts(document, path):
    return [e.text for e in document.iterfind(path, CAP)]


def test_the_schema_is_the_official_one_and_refuses_what_it_should(schema):
    text = XSD.read_text()
    assert "Copyright OASIS Open 2010" in text
    assert 'targetNamespace = "urn:oasis:names:tc:emergency:cap:1.2"' in text
    bad = (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier>'
           b'<sender>s</sender><sent>2026-01-01T00:00:00Z</sent><status>Actual</status>'
           b'<msgType>Alert</msgType><scope>Public</scope></alert>')
    assert not schema.validate(etree.fromstring(bad))  # CAP forbids "Z": an offset is needed


def test_every_alert_validates_and_carries_its_text_exactly(app, city, client, schema):
    drawn = post_notice(city.store, messages=MESSAGES, severity="Extreme",
                        area=Area(AREA, 'Lower Wacker <& "drive">'), suspend=["SDR", "PHF"],
                        ends=now_utc() + timedelta(hours=6), actor="em")
    districts = post_notice(city.store, messages={"en": "Snow"}, severity="Minor",
                            area=Area(WEST.union(shapely.box(-87.5, 41.6, -87.4, 41.7)),
                                      "two parts"), actor="em")
    future = post_notice(city.store, messages={"en": "Planned outage"}, severity="Moderate",
                         area=Area(EAST, "east"), starts=now_utc() + timedelta(days=2),
                         actor="em")
    response = client.get(f"/cap/{drawn.id}.xml")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/cap+xml; charset=utf-8"
    alert = _valid(schema, response.data)
    assert _texts(alert, "cap:msgType") == ["Alert"] and _texts(alert, "cap:scope") == ["Public"]
    assert _texts(alert, "cap:info/cap:language") == ["en", "es", "pl", "zh-Hans"]
    # each message reads back as written, but for the one character XML cannot carry
    described = _texts(alert, "cap:info/cap:description")
    assert described[0] == HOSTILE.replace("\x00", "") and described[1:] == \
        [MESSAGES["es"], MESSAGES["pl"], MESSAGES["zh"]]
    assert set(_texts(alert, "cap:info/cap:severity")) == {"Extreme"}
    assert set(_texts(alert, "cap:info/cap:urgency")) == {"Immediate"}
    assert set(_texts(alert, "cap:info/cap:certainty")) == {"Observed"}
    assert _texts(alert, "cap:info/cap:area/cap:areaDesc")[0] == 'Lower Wacker <& "drive">'
    [ring] = _texts(alert, "cap:info[1]/cap:area/cap:polygon")
    points = [tuple(map(float, p.split(","))) for p in ring.split()]
    assert points[0] == points[-1] and shapely.Polygon([(lon, lat) for lat, lon in points])\
        .equals(AREA)
    assert _texts(alert, "cap:info[1]/cap:parameter/cap:value") == ["SDR PHF"]
    assert _texts(alert, "cap:sent")[0].endswith(("-06:00", "-05:00"))

    two = _valid(schema, client.get(f"/cap/{districts.id}.xml").data)
    assert len(_texts(two, "cap:info/cap:area/cap:polygon")) == 2
    assert _texts(two, "cap:info/cap:expires") == []  # until ended by hand
    upcoming = _valid(schema, client.get(f"/cap/{future.id}.xml").data)
    assert _texts(upcoming, "cap:info/cap:urgency") == ["Future"]

    end_notice(city.store, drawn.id, actor="em")
    cancel = _valid(schema, client.get(f"/cap/{drawn.id}.xml").data)
    assert _texts(cancel, "cap:msgType") == ["Cancel"]
    original = _texts(alert, "cap:identifier")[0]
    assert _texts(cancel, "cap:references")[0].split(",")[1] == original
    assert _texts(cancel, "cap:identifier")[0] != original
    assert client.get("/cap/999.xml").status_code == 404


def test_text_stored_by_any_path_still_makes_valid_xml(app, city, client, schema):
    notice = post_notice(city.store, messages={"en": "ok"}, severity="Unknown",
                         area=Area(AREA, "area"), actor="em")
    raw = "bell\x07 esc\x1b <x> ]]> \ufffe end"  # PostgreSQL refuses NUL: see below
    with city.store.engine.begin() as conn:  # written behind the service's checks
        conn.execute(update(t.notice_messages).values(text=raw))
        conn.execute(update(t.notices).values(area_desc=raw))
    alert = _valid(schema, client.get(f"/cap/{notice.id}.xml").data)
    assert _texts(alert, "cap:info/cap:description") == ["bell esc <x> ]]>  end"]
    for url in ("/cap.xml", "/notices.atom"):
        feed = etree.fromstring(client.get(url).data)
        assert feed.findtext("a:entry/a:summary", namespaces=ATOM) == "bell esc <x> ]]>  end"
    with_nul = replace(city.store.notices.get(notice.id), messages={"en": "a\x00b"})
    publisher = cap.Publisher("311@city.example", "City", "https://city.example")
    document = _valid(schema, cap.alert(with_nul, publisher, now_utc()))
    assert _texts(document, "cap:info/cap:description") == ["ab"]


def test_the_cap_index_lists_the_alerts_in_force_and_each_link_validates(app, city, client,
                                                                         schema):
    current = post_notice(city.store, messages={"en": "Now"}, severity="Severe",
                          area=Area(AREA, "a"), actor="em")
    ended = post_notice(city.store, messages={"en": "Was"}, severity="Minor",
                        area=Area(AREA, "b"), actor="em")
    end_notice(city.store, ended.id, actor="em")
    post_notice(city.store, messages={"en": "Later"}, severity="Minor", area=Area(AREA, "c"),
                starts=now_utc() + timedelta(days=1), actor="em")
    response = client.get("/cap.xml")
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    feed = etree.fromstring(response.data)
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    for required in ("a:id", "a:title", "a:updated", "a:author/a:name"):
        assert feed.findtext(required, namespaces=ATOM), required
    entries = feed.findall("a:entry", ATOM)
    links = [e.find("a:link[@type='application/cap+xml']", ATOM).get("href") for e in entries]
    assert links == [f"http://localhost/cap/{current.id}.xml"]
    for e in entries:
        assert e.findtext("a:id", namespaces=ATOM) and e.findtext("a:updated", namespaces=ATOM)
    for href in links:
        _valid(schema, client.get(href.replace("http://localhost", "")).data)


def test_the_atom_feed_speaks_the_readers_language_and_keeps_recently_ended(app, city, client):
    now = post_notice(city.store, messages={"en": "Flooding", "es": "Inundación"},
                      severity="Severe", area=Area(AREA, "a"), actor="em")
    gone = post_notice(city.store, messages={"en": "Old news"}, severity="Minor",
                       area=Area(AREA, "b"), actor="em")
    end_notice(city.store, gone.id, actor="em")
    stale = post_notice(city.store, messages={"en": "Long ago"}, severity="Minor",
                        area=Area(AREA, "c"), actor="em")
    with city.store.engine.begin() as conn:
        conn.execute(update(t.notices).where(t.notices.c.id == stale.id).values(
            starts=now_utc() - timedelta(days=90), ends=now_utc() - timedelta(days=60)))
    feed = etree.fromstring(client.get("/notices.atom",
                                       headers={"Accept-Language": "es"}).data)
    entries = feed.findall("a:entry", ATOM)
    assert [e.findtext("a:summary", namespaces=ATOM) for e in entries] == \
        ["Old news", "Inundación"]
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    assert [e.get(lang) for e in entries] == ["en", "es"]
    assert entries[1].findtext("a:title", namespaces=ATOM) == "Severe: Inundación"
    assert len({e.findtext("a:id", namespaces=ATOM) for e in entries}) == 2
    assert now.id != gone.id


def test_cap_polygons_are_closed_rings_of_lat_lon():
    ring = polygons(shapely.MultiPolygon([AREA]))[0].split()
    assert ring[0] == ring[-1] and ring[0] == "41.875,-87.62"
    holed = shapely.Polygon(AREA.exterior.coords, [shapely.box(-87.64, 41.88, -87.63, 41.89)
                                                   .exterior.coords])
    assert len(polygons(holed)) == 1  # CAP polygons have no holes: the outer ring is kept
