"""The KPI page for a CitiStat meeting: names, trends, previous period, exports, cache."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest

from geo311.model import NewRequest, Service
from tests.conftest import submit_as_imported
from tests.prepared import starts_from

HOSTILE = '=HYPERLINK("http://evil.example","x")'
#: Points in the Loop (community area 32) and further north, far enough apart that
#: none is a duplicate of another.
LOOP = [(-87.6321, 41.8837), (-87.6250, 41.8790), (-87.6300, 41.8760), (-87.6270, 41.8850)]
NORTH = [(-87.6890, 41.9700), (-87.6800, 41.9600)]

starts_from("layered", "kpi_data", module=__name__)


@pytest.fixture
def kpi_data(app):
    s = app.extensions["geo311"]
    s.store.catalogue.upsert([Service("KPA", HOSTILE, "Streets", sla_hours=48,
                                      sla_clock="24x7")])
    base = datetime(2024, 3, 4, 15, tzinfo=UTC)  # a Monday
    made = []
    for day, at in ((0, LOOP[0]), (1, LOOP[1]), (2, NORTH[0]), (8, LOOP[2]), (9, NORTH[1]),
                    (15, LOOP[3])):
        made.append(submit_as_imported(s.store, s.context(), NewRequest(
            "KPA", *at, requested_datetime=base + timedelta(days=day))))
    return made


def _rows(body, table_id):
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', body, re.S).group(1)
    return [re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S) for tr in re.findall(
        r"<tr[^>]*>(.*?)</tr>", table, re.S) if "<td" in tr]


def test_districts_have_names_and_the_trend_counts_each_week(app, staff_client, kpi_data):
    c = staff_client("planner")
    body = c.get("/kpi?layer=community_areas&period=week").get_data(as_text=True)
    names = {row[0]: row[1] for row in _rows(body, "kpi-district")}
    assert names["32"] == "LOOP"
    weeks = {row[0]: int(row[1]) for row in _rows(body, "kpi-trend")}
    assert weeks == {"2024-03-04": 3, "2024-03-11": 2, "2024-03-18": 1}
    assert body.count('<rect class="received"') == 3 and 'id="trend-chart"' in body
    assert HOSTILE not in body and "=HYPERLINK(&#34;" in body  # escaped on the page


@pytest.mark.both_backends
def test_a_dated_view_compares_with_the_period_before(app, staff_client, kpi_data):
    c = staff_client("planner")
    # 11-17 March against 4-10 March: 2 requests against 3.
    body = c.get("/kpi?layer=community_areas&start=2024-03-11&end=2024-03-17").get_data(
        as_text=True)
    total = next(r for r in _rows(body, "kpi-service") if r[0] == "all")
    assert total[1:3] == ["2", "3"]
    assert "-33%" in total[3]


def test_csv_and_xlsx_hold_the_tables_with_formulas_defused(app, staff_client, kpi_data):
    c = staff_client("dispatcher")
    r = c.get("/kpi/export.csv?layer=community_areas&table=service")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["service"] for row in rows] == ["'" + HOSTILE, "all"]
    assert rows[0]["volume"] == "6"
    book = openpyxl.load_workbook(io.BytesIO(
        c.get("/kpi/export.xlsx?layer=community_areas").get_data()))
    assert book.sheetnames == ["district", "service", "trend", "channel", "agent",
                               "satisfaction"]
    cells = [cell.value for row in book["service"].iter_rows() for cell in row]
    assert "'" + HOSTILE in cells and HOSTILE not in cells
    trend = list(book["trend"].iter_rows(values_only=True))
    assert sum(row[1] for row in trend[1:]) == 6
    assert c.get("/kpi/export.csv?table=nope").status_code == 400


def test_a_change_shows_at_once_although_views_are_cached(app, staff_client, kpi_data):
    c = staff_client("planner")
    url = "/kpi?layer=community_areas"
    first = next(r for r in _rows(c.get(url).get_data(as_text=True), "kpi-service")
                 if r[0] == "all")
    app.extensions["geo311"].store.requests.set_status(kpi_data[0].id, "closed", note="fixed")
    after = next(r for r in _rows(c.get(url).get_data(as_text=True), "kpi-service")
                 if r[0] == "all")
    assert (first[2], first[3]) == ("0", "6") and (after[2], after[3]) == ("1", "5")


def test_kpi_pages_refuse_other_roles_and_bad_values(app, staff_client, kpi_data):
    assert staff_client("gis").get("/kpi").status_code == 403
    assert staff_client("gis").get("/kpi/export.xlsx").status_code == 403
    c = staff_client("planner")
    assert c.get("/kpi?period=fortnight").status_code == 400
    assert c.get("/kpi?start=2024-03-10&end=2024-03-01").status_code == 400
    assert c.get("/kpi?layer=nope").status_code == 404


@pytest.mark.both_backends
def test_the_centre_figures_count_contacts_channels_agents_and_first_actions(
        app, staff_client, kpi_data):
    s = app.extensions["geo311"]
    store = s.store
    phoned = submit_as_imported(store, s.context(), NewRequest(
        "KPA", -87.7000, 41.9500, requested_datetime=datetime(2024, 3, 5, 15, tzinfo=UTC),
        source="phone"))
    made = [  # (agent, channel, kind, outcome, request)
        ("ana", "phone", "info", "answered", None),
        ("ana", "phone", "info", "transferred", None),
        ("ana", "phone", "request", "", phoned.id),
        ("bo", "email", "info", "referred elsewhere", None),
    ]
    for agent, channel, kind, outcome, rid in made:
        store.contacts.add(agent=agent, channel=channel, kind=kind, outcome=outcome,
                           request_id=rid)
    store.requests.set_status(kpi_data[1].id, "closed", note="done", actor="disp")
    store.requests.set_status(kpi_data[2].id, "closed", note="done")  # by rule: not staff

    body = staff_client("planner").get("/kpi?layer=community_areas").get_data(as_text=True)
    channels = {row[0]: row[1:] for row in _rows(body, "kpi-channel")}
    # Independent counts from what was made: desk contacts by channel, and requests by
    # source (six imported from the web fixture, one by phone).
    assert channels["phone"] == ["3", "2", "67%", "1"]
    assert channels["email"] == ["1", "1", "100%", "0"]
    assert channels["web"] == ["0", "0", "—", str(len(kpi_data))]
    assert channels["all"] == ["4", "3", "75%", str(len(kpi_data) + 1)]
    agents = {row[0]: row[1:] for row in _rows(body, "kpi-agent")}
    assert agents == {"ana": ["3", "2", "1", "67%"], "bo": ["1", "1", "0", "100%"]}
    assert 'id="centre-info-share">75%<' in body and 'id="centre-fcr">75%<' in body
    assert f"for 1 of {len(kpi_data) + 1} requests" in body  # only the staff action counts
    out = staff_client("planner").get("/kpi/export.csv?layer=community_areas&table=agent")
    rows = list(csv.DictReader(io.StringIO(out.get_data(as_text=True))))
    assert [(r["agent"], r["contacts"]) for r in rows] == [("ana", "3"), ("bo", "1")]
