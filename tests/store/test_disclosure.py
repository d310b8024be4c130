"""Public-records packages on both backends: what they hold, what they never hold, same bytes."""

import csv
import io
import json
import re
import zipfile
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from geo311.disclosure import RecordsQuery, build_package, count_matching, parse_query
from geo311.errors import InvalidRequest
from geo311.geodesy import haversine_m
from geo311.store import tables as t
from tests.disclosure_seed import (
    HOSTILE,
    INTERNAL,
    REPORTERS,
    SECRETS,
    SENSITIVE_POINT,
)
from tests.prepared import starts_from

ZONE = ZoneInfo("America/Chicago")
RECEIVED = date(2026, 11, 30)
#: Columns of requests.csv that hold numbers (a leading "-" there is a sign).
NUMERIC = {"id", "lat", "long", "duplicate_of", "reporter_count"}


starts_from("disclosure_seeded", "seeded", module=__name__)


@pytest.fixture
def seeded(store, prepared):
    return prepared


def _package(store, tmp_path, name="p.zip", **search):
    query = RecordsQuery(reference="FOIA-<b>1</b>", received=RECEIVED,
                         title="<script>alert('t')</script> all hostile text",
                         requester="=cmd|' /C calc'!A0", **search)
    summary = build_package(store, query, tmp_path / name, zone=ZONE, actor="tester")
    with zipfile.ZipFile(tmp_path / name) as zf:
        files = {i.filename: zf.read(i) for i in zf.infolist()}
        stamps = {i.date_time for i in zf.infolist()}
    return summary, files, stamps


def test_no_reporter_contact_internal_note_or_identifier_survives_in_any_file(
        store, seeded, tmp_path):
    summary, files, _ = _package(store, tmp_path)
    assert summary.requests == len(seeded.ids) + 1
    assert set(files) == {"requests.csv", "history.csv", "requests.geojson",
                          "redaction_log.json", "query.toml", "summary.html", "manifest.json"}
    for name, data in files.items():
        text = data.decode("utf-8")
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), (name, secret)
        # nor in any other writing: the planted phone numbers by their digits
        runs = [re.sub(r"\D", "", run) for run in re.findall(r"\d[\d\s().+/-]*\d", text)]
        for number in ("3125550199", "7735550123", "7085550177", "3125550111", "7735550144",
                       *(re.sub(r"\D", "", r.phone) for r in REPORTERS)):
            assert not [run for run in runs if number in run], (name, number)
    # what the public may read is there, masked
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(files["requests.csv"].decode()))}
    assert rows[seeded.ids[0]]["description"].endswith("call me at [phone removed]")
    assert "[email removed]" in rows[seeded.ids[1]]["description"]
    assert "[number removed]" in rows[seeded.ids[5]]["description"]
    assert rows[seeded.ids[4]]["description"] == HOSTILE[4]  # an address and a size stay


def test_hostile_text_is_escaped_for_each_format(store, seeded, tmp_path):
    _, files, _ = _package(store, tmp_path)
    # JSON: no markup character at all, yet the text reads back as stored (redacted)
    for name in ("requests.geojson", "redaction_log.json", "manifest.json"):
        assert not set(files[name].decode()) & set("<>&"), name
    features = json.loads(files["requests.geojson"])["features"]
    first = next(f for f in features if f["id"] == seeded.ids[0])
    assert first["properties"]["description"].startswith("<script>alert('pwned')</script>")
    assert json.loads(files["manifest.json"])["title"].startswith("<script>")
    # HTML: every stored or typed text escaped; nothing runs
    page = files["summary.html"].decode()
    assert "<script" not in page.lower() and "<b>" not in page and "onerror" not in page
    assert "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt;" in page
    assert "Domestic &lt;b&gt;Shelter&lt;/b&gt; Referral" in page
    # CSV: no text cell a spreadsheet would run
    for name in ("requests.csv", "history.csv"):
        reader = csv.DictReader(io.StringIO(files[name].decode()))
        cells = [(col, v) for row in reader for col, v in row.items() if col not in NUMERIC]
        assert cells
        assert [c for c in cells if c[1][:1] in ("=", "+", "-", "@", "\t", "\r")] == [], name
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(files["requests.csv"].decode()))}
    assert rows[seeded.ids[1]]["description"].startswith("'=cmd|' /C calc'!A0 write to [email")
    assert rows[seeded.ids[3]]["description"].startswith("'@SUM(1+1)")
    assert rows[seeded.ids[2]]["description"].startswith("[phone removed] is my cell <img")
    assert json.loads(files["manifest.json"])["requester"] == "=cmd|' /C calc'!A0"


def test_history_is_public_only_and_the_log_says_what_was_withheld_where(
        store, seeded, tmp_path):
    _, files, _ = _package(store, tmp_path)
    history = list(csv.DictReader(io.StringIO(files["history.csv"].decode())))
    first = [(h["event"], h["from"], h["to"]) for h in history
             if int(h["request_id"]) == seeded.reopened]
    assert ("status", "open", "closed") in first and ("status", "closed", "open") in first
    assert all(h["by"] == "City staff" for h in history)
    forwarded = [h for h in history if int(h["request_id"]) == seeded.forwarded
                 and h["event"] == "forwarded"]
    assert [(h["from"], h["to"]) for h in forwarded] == [("SCB", "PHF")]
    notes = [h["note"] for h in history if h["event"] == "public_note"]
    assert any("[phone removed] or [email removed]" in n for n in notes)
    assert all(INTERNAL[:20] not in n for n in notes)

    log = json.loads(files["redaction_log.json"])
    entries = log["entries"]
    by = {(e["request"], e["field"], e["rule"]): e for e in entries}
    for rid in seeded.ids:  # every reporter field of every request, counted, not shown
        for fld in ("first_name", "last_name", "email", "phone", "device_id", "account_id"):
            assert by[(rid, f"reporter.{fld}", "reporter-contact")]["count"] == 1
    assert by[(seeded.ids[1], "notes", "internal-note")]["count"] == 2
    assert by[(seeded.ids[0], "notes", "internal-note")]["count"] == 1
    assert (seeded.reopened, "history.status", "staff-reason") in by
    assert (seeded.forwarded, "history.forwarded", "staff-reason") in by
    assert by[(seeded.ids[0], "description", "phone-in-free-text")]["files"] == [
        "requests.csv", "requests.geojson"]
    assert (seeded.ids[1], "media_url", "media-link") in by
    assert {e["field"] for e in entries if e["request"] == seeded.sensitive
            and e["rule"] == "sensitive-service"} == {"address", "description", "media_url"}
    rules = {r["rule"]: r["count"] for r in log["rules"]}
    assert rules["reporter-contact"] == 6 * len(REPORTERS) + 6  # the sensitive one too
    assert rules["internal-note"] == 3
    assert sum(rules.values()) == sum(e["count"] for e in entries)


def test_a_sensitive_request_is_moved_to_its_cell_and_loses_address_and_photo(
        store, seeded, tmp_path):
    _, files, _ = _package(store, tmp_path)
    features = {f["id"]: f for f in json.loads(files["requests.geojson"])["features"]}
    shown = features[seeded.sensitive]
    lon, lat = shown["geometry"]["coordinates"]
    moved = float(haversine_m(SENSITIVE_POINT[0], SENSITIVE_POINT[1], lon, lat))
    assert 1 < moved < 250
    assert shown["properties"]["address"] == shown["properties"]["media_url"] == ""
    assert features[seeded.ids[2]]["properties"]["media_url"] == \
        "https://img.example.org/p/42.jpg"


def test_the_same_query_on_the_same_data_gives_the_same_bytes(store, seeded, tmp_path):
    first, files, stamps = _package(store, tmp_path, "a.zip")
    second, _, _ = _package(store, tmp_path, "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert first.sha256 == second.sha256
    assert stamps == {(2026, 11, 30, 0, 0, 0)}
    import hashlib

    manifest = json.loads(files["manifest.json"])
    listed = {f["name"]: f["sha256"] for f in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    assert all(hashlib.sha256(files[n]).hexdigest() == h for n, h in listed.items())
    # the query inside reads back to the one that made the package
    assert parse_query(files["query.toml"].decode()).requester == "=cmd|' /C calc'!A0"
    audited = [e for e in store.audit.entries("disclosure") if e["action"] == "disclosure_exported"]
    assert [e["detail"]["sha256"] for e in audited] == [first.sha256, second.sha256]
    assert audited[0]["actor"] == "tester"


def test_the_search_takes_what_an_independent_filter_takes(store, seeded, tmp_path):
    sr, rd = t.service_requests.c, t.request_districts.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(sr.id, sr.service_code, sr.status, sr.description,
                                   sr.address, sr.requested_datetime)).all()
        wards = dict(conn.execute(
            select(rd.request_id, rd.district_id).join(
                t.layer_versions, t.layer_versions.c.id == rd.layer_version_id)
            .join(t.layers, t.layers.c.id == t.layer_versions.c.layer_id)
            .where(t.layers.c.name == "wards_2015_2023")).all())
    ward = wards[seeded.ids[3]]
    cases = [
        (dict(services=("SCB",)), lambda r: r.service_code == "SCB"),
        (dict(status="open"), lambda r: r.status == "open"),
        (dict(text="PWNED"), lambda r: "pwned" in r.description.lower()),
        (dict(districts=(("wards_2015_2023", ward),)), lambda r: wards.get(r.id) == ward),
        (dict(start=date(2025, 3, 4), end=date(2025, 3, 5)),
         lambda r: date(2025, 3, 4) <= r.requested_datetime.astimezone(ZONE).date()
         <= date(2025, 3, 5)),
        (dict(ids=(seeded.ids[0], seeded.ids[5], 999999)),
         lambda r: r.id in (seeded.ids[0], seeded.ids[5])),
    ]
    for search, keep in cases:
        query = RecordsQuery(reference="R", received=RECEIVED, **search)
        expected = sorted(r.id for r in rows if keep(r))
        assert expected, search
        assert store.disclosure.matching_ids(query.search(ZONE)) == expected, search
        assert count_matching(store, query, ZONE) == len(expected)


def test_a_query_naming_what_does_not_exist_is_refused(store, seeded, tmp_path):
    with pytest.raises(InvalidRequest, match=r"services \['NOPE'\] are not in"):
        count_matching(store, RecordsQuery("R", RECEIVED, services=("NOPE",)), ZONE)
    with pytest.raises(InvalidRequest, match="'wards_1900' but is expected to be an active"):
        build_package(store, RecordsQuery("R", RECEIVED, districts=(("wards_1900", "1"),)),
                      tmp_path / "x.zip", zone=ZONE)
    assert not (tmp_path / "x.zip").exists()
