"""Area notices on the web: the emergency managers' page and commands, the banner on public
pages, and a suspended service refused alike by the web form, the desk and Open311."""

import json

import pytest
import shapely
from shapely.geometry import mapping

from geo311.accounts import ROLES
from geo311.notices import Area, post_notice
from geo311.store.rows import now_utc
from geo311_web.cli import cli
from tests.web.conftest import AUSTIN, EAST, LOOP, PILSEN, WEST

AREA = shapely.box(-87.645, 41.875, -87.620, 41.895)  # around LOOP; PILSEN and AUSTIN outside
HOSTILE = '<script>alert("n")</script> & ]]> "quoted"'
DESK = "/api/staff/intake/request"


def _notice(city, **kw):
    args = {"messages": {"en": f"Flooding {HOSTILE}", "es": "Inundación"},
            "severity": "Severe", "area": Area(AREA, "Loop flood"), "suspend": ["SDR"],
            "actor": "em", **kw}
    return post_notice(city.store, **args)


def test_the_notices_page_lets_in_emergency_managers_and_admins_only(app, city, staff_client):
    for role in ROLES:
        client = staff_client(role)
        allowed = role in ("emergency", "admin")
        assert client.get("/staff/notices").status_code == (200 if allowed else 403), role
        assert client.post("/staff/notices/1/end").status_code == (404 if allowed else 403)
        assert client.post("/staff/notices/1/acknowledge").status_code == \
            (404 if allowed else 403)
    anonymous = app.test_client().get("/staff/notices")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_an_emergency_manager_starts_on_the_notices_page(app, city, staff_client):
    page = staff_client("emergency").get("/staff/notices").get_data(as_text=True)
    assert 'class="staff-link">Notices</a>' in page and ">Dispatch</a>" not in page
    assert 'id="notice-map"' in page and 'name="csrf_token"' in page


def test_posting_a_drawn_an_uploaded_and_a_district_notice_from_the_page(app, city,
                                                                         staff_client):
    client = staff_client("emergency", "em")
    drawn = client.post("/staff/notices", data={
        "message_en": "Water main break", "message_zh": "水管破裂", "severity": "Moderate",
        "area_source": "draw", "area_geojson": json.dumps(mapping(AREA)),
        "suspend": ["SDR", "PHF"], "ends": "2099-01-01T08:00"})
    assert drawn.status_code == 303, drawn.get_data(as_text=True)
    kml = ("<kml xmlns='http://www.opengis.net/kml/2.2'><Placemark><Polygon><outerBoundaryIs>"
           "<LinearRing><coordinates>-87.645,41.875 -87.62,41.875 -87.62,41.895 -87.645,41.895"
           " -87.645,41.875</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
           "</kml>")
    from io import BytesIO
    uploaded = client.post("/staff/notices", data={
        "message_en": "Gas leak", "severity": "Extreme", "area_source": "file",
        "area_file": (BytesIO(kml.encode()), "gas leak.kml")},
        content_type="multipart/form-data")
    assert uploaded.status_code == 303, uploaded.get_data(as_text=True)
    districts = client.post("/staff/notices", data={
        "message_en": "Snow emergency", "severity": "Minor", "area_source": "districts",
        "layer": "city", "districts": "west"})
    assert districts.status_code == 303, districts.get_data(as_text=True)
    snow, gas, water = city.store.notices.all()
    assert water.messages == {"en": "Water main break", "zh": "水管破裂"}
    assert water.suspended == ("SDR", "PHF") and water.area.equals(AREA)
    assert water.ends.isoformat() == "2099-01-01T14:00:00+00:00"  # 08:00 in Chicago
    assert gas.area.equals(AREA) and gas.area_desc == "gas leak.kml"
    assert snow.area.equals(WEST) and (snow.layer, snow.districts) == ("city", ("west",))
    assert {e["actor"] for e in city.store.audit.entries("notice")} == {"em"}
    listed = client.get("/staff/notices").get_data(as_text=True)
    assert "Notice 3 posted (Minor, city: West)." in listed and "水管破裂" in listed


#: Forms that must be refused, and what the page must say (HTML-escaped).
BAD_FORMS = [
    ({"message_en": "", "area_source": "districts", "layer": "city", "districts": "west"},
     "a message in the city&#39;s default language (en) is required"),
    ({"message_en": "x", "area_source": "draw", "area_geojson": ""}, "draw the area on the map"),
    ({"message_en": "x", "area_source": "districts", "layer": "city", "districts": "north"},
     "layer &#39;city&#39; has no district &#39;north&#39;"),
    ({"message_en": "x", "area_source": "file"}, "choose a GeoJSON or KML file"),
    ({"message_en": "x", "area_source": "draw", "area_geojson": "{}", "ends": "soon"},
     "end was &#39;soon&#39;"),
    ({"message_en": "x", "area_source": "moon"}, "area_source was &#39;moon&#39;"),
]


def test_a_refused_notice_comes_back_with_its_message_and_nothing_is_stored(app, city,
                                                                             staff_client):
    client = staff_client("emergency")
    for form, needle in BAD_FORMS:
        page = client.post("/staff/notices", data={"severity": "Severe", **form})
        html = page.get_data(as_text=True)
        assert page.status_code == 400 and needle in html and 'id="form-error"' in html, form
        assert 'value="x"' not in html or "message_en" in html  # the form is kept
    assert city.store.notices.all() == []


def test_forms_without_a_csrf_token_are_refused(app, city):
    from geo311.accounts import create_user
    from tests.conftest import STAFF_PASSWORD

    create_user(city.store, "em", STAFF_PASSWORD, "emergency")
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    login = client.get("/login").get_data(as_text=True)
    token = login.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": "em", "password": STAFF_PASSWORD,
                                "csrf_token": token})
    refused = client.post("/staff/notices", data={"message_en": "x", "severity": "Minor",
                                                  "area_source": "districts", "layer": "city",
                                                  "districts": "west"})
    assert refused.status_code == 400 and city.store.notices.all() == []


@pytest.mark.both_backends
def test_a_suspended_service_is_refused_inside_the_area_on_all_three_channels(app, city, client,
                                                                               staff_client):
    notice = _notice(city)
    desk = staff_client("agent")

    def three(at):
        web = client.post("/report", data={"service_code": "SDR", "lat": at[1], "long": at[0]})
        by_desk = desk.post(DESK, json={"channel": "phone", "service_code": "SDR",
                                        "lat": at[1], "long": at[0]})
        open311 = client.post("/open311/v2/requests.json", data={
            "api_key": city.key, "service_code": "SDR", "lat": at[1], "long": at[0]})
        return web, by_desk, open311

    web, by_desk, open311 = three(LOOP)
    assert (web.status_code, by_desk.status_code, open311.status_code) == (422, 422, 400)
    said = open311.get_json()[0]["description"]
    assert said == by_desk.get_json()[0]["description"]
    assert f"notice {notice.id} (Severe)" in said and HOSTILE in said
    assert said.startswith("service_code 'SDR' (Fly Dumping Complaint) is suspended at this "
                           "location until further notice by notice")
    assert open311.get_json()[0]["code"] == 400
    page = web.get_data(as_text=True)
    assert 'id="report-error"' in page and "&lt;script&gt;alert(" in page and HOSTILE not in page
    xml = client.post("/open311/v2/requests.xml", data={
        "api_key": city.key, "service_code": "SDR", "lat": LOOP[1], "long": LOOP[0]})
    assert xml.status_code == 400 and b"<errors><error><code>400</code>" in xml.data
    assert b"is suspended at this location" in xml.data and b"&lt;script&gt;" in xml.data
    assert city.store.requests.count() == 0

    web, by_desk, open311 = three(PILSEN)
    assert (web.status_code, by_desk.status_code, open311.status_code) == (200, 201, 200)
    other = client.post("/open311/v2/requests.json", data={
        "api_key": city.key, "service_code": "PHF", "lat": LOOP[1], "long": LOOP[0]})
    assert other.status_code == 200
    assert city.store.requests.count() == 4


def test_public_pages_show_the_notice_only_for_places_inside_it(app, city, client):
    inside, outside = city.report("PHF", LOOP), city.report("PHF", AUSTIN)
    notice = _notice(city)
    page = client.get(f"/requests/{inside.id}").get_data(as_text=True)
    assert 'id="area-notices"' in page and f'data-notice="{notice.id}"' in page
    assert "Flooding &lt;script&gt;alert(&#34;n&#34;)&lt;/script&gt; &amp; ]]&gt;" in page
    assert "Reports of Fly Dumping Complaint are not taken here while it lasts" in page
    assert "data-notice" not in client.get(f"/requests/{outside.id}").get_data(as_text=True)
    spanish = client.get(f"/requests/{inside.id}", headers={"Accept-Language": "es-MX,es"})
    assert 'lang="es">Inundación</span>' in spanish.get_data(as_text=True)
    # the report form, once its place is chosen
    chosen = client.get(f"/?lat={LOOP[1]}&long={LOOP[0]}").get_data(as_text=True)
    assert f'data-notice="{notice.id}"' in chosen
    assert "data-notice" not in client.get("/").get_data(as_text=True)


def test_the_notice_api_answers_by_point_and_language(app, city, client):
    notice = _notice(city)
    here = client.get(f"/api/notices?lat={LOOP[1]}&long={LOOP[0]}&lang=es").get_json()
    [feature] = here["features"]
    assert feature["id"] == notice.id and feature["properties"]["message"] == "Inundación"
    assert feature["properties"]["suspended"][0]["code"] == "SDR"
    assert shapely.geometry.shape(feature["geometry"]).equals(AREA)
    assert client.get(f"/api/notices?lat={PILSEN[1]}&long={PILSEN[0]}").get_json()[
        "features"] == []
    assert [f["id"] for f in client.get("/api/notices").get_json()["features"]] == [notice.id]
    bad = client.get("/api/notices?lat=north&long=1")
    assert bad.status_code == 400 and "lat and long are required" in \
        bad.get_json()[0]["description"]


def test_ending_and_acknowledging_from_the_page(app, city, staff_client):
    notice = _notice(city, suspend=[])
    flooded = [city.report("SDR", (LOOP[0] + dx, LOOP[1]), reporter=_reporter(i))
               for i, dx in enumerate((0.0, 0.0004, -0.003))]
    city.report("SDR", PILSEN)
    client = staff_client("emergency", "em")
    page = client.get("/staff/notices").get_data(as_text=True)
    assert f'id="acknowledge-{notice.id}"' in page
    done = client.post(f"/staff/notices/{notice.id}/acknowledge",
                       data={"services": ["SDR"], "note": "Known: crews are on it"},
                       follow_redirects=True)
    assert done.status_code == 200
    assert "Notice 1: 3 open request(s) acknowledged; their reporters are told by mail." in \
        done.get_data(as_text=True)
    assert city.store.notices.acknowledged(notice.id) == [r.id for r in flooded]
    assert len([r for r in city.store.outbox.rows() if r["kind"] == "status"]) == 3
    empty = client.post(f"/staff/notices/{notice.id}/acknowledge", data={"note": "x"})
    assert empty.status_code == 400 and "choose the services" in empty.get_data(as_text=True)
    ended = client.post(f"/staff/notices/{notice.id}/end", follow_redirects=True)
    assert f"Notice {notice.id} ended." in ended.get_data(as_text=True)
    assert city.store.notices.get(notice.id).ended_by == "em"
    twice = client.post(f"/staff/notices/{notice.id}/end")
    assert twice.status_code == 400 and "already ended" in twice.get_data(as_text=True)


def _reporter(i):
    from geo311.model import Reporter

    return Reporter(email=f"resident{i}@example.org")


def test_the_notices_commands_add_list_acknowledge_and_end(app, city, runner, tmp_path):
    area = tmp_path / "flood.geojson"
    area.write_text(json.dumps({"type": "Feature", "properties": {},
                                "geometry": mapping(AREA)}))
    added = runner.invoke(cli, ["notices", "add", "--message", "Flooding", "--severity",
                                "Severe", "--area", str(area), "--suspend", "SDR,SCB",
                                "--message-in", "es", "Inundación", "--end", "2099-01-01"])
    assert added.exit_code == 0, added.output
    assert added.output.startswith("notice 1 posted: Severe, flood.geojson, from ")
    assert "until 2099-01-01 00:00 CST; suspends SDR, SCB" in added.output
    by_districts = runner.invoke(cli, ["notices", "add", "--message", "Snow", "--severity",
                                       "Minor", "--layer", "city", "--districts", "east"])
    assert by_districts.exit_code == 0, by_districts.output
    assert city.store.notices.get(2).area.equals(EAST)
    listed = runner.invoke(cli, ["notices", "list", "--json"])
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["id"], r["status"], r["severity"]) for r in rows] == \
        [(2, "in force", "Minor"), (1, "in force", "Severe")]
    assert rows[1]["messages"] == {"en": "Flooding", "es": "Inundación"}
    city.report("PHF", LOOP)
    acknowledged = runner.invoke(cli, ["notices", "acknowledge", "1", "--services", "PHF",
                                       "--note", "Known"])
    assert acknowledged.output.strip() == "notice 1: 1 open request(s) acknowledged"
    assert runner.invoke(cli, ["notices", "end", "1"]).output.strip() == "notice 1 ended"
    assert "ended" in runner.invoke(cli, ["notices", "list"]).output.splitlines()[1]
    assert {(e["action"], e["actor"]) for e in city.store.audit.entries("notice", 1)} == \
        {("posted", "cli"), ("acknowledged_requests", "cli"), ("ended", "cli")}


@pytest.mark.parametrize("args,needle", [
    (["--severity", "Severe"], "give the area as --area FILE or as --layer L"),
    (["--severity", "Bad", "--layer", "city", "--districts", "east"], "'Bad' is not one of"),
    (["--severity", "Minor", "--layer", "city"], "--layer needs --districts"),
    (["--severity", "Minor", "--layer", "city", "--districts", "east", "--start", "noon"],
     "--start was 'noon'"),
])
def test_bad_notice_commands_say_what_is_wrong_and_store_nothing(app, city, runner, args,
                                                                 needle):
    result = runner.invoke(cli, ["notices", "add", "--message", "x", *args])
    assert result.exit_code != 0 and needle in result.output
    assert city.store.notices.all() == []
    assert now_utc()  # the clock is read, the notice table is not
