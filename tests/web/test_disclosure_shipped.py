"""A records package from the shipped data (the demo's 60,167 Chicago requests).

The records request of the README: sanitation code complaints in ward 42 during 2012.
Staff casework with contact details and an internal note is added to some of them
first; none of it may reach the package, whose count is checked against plain SQL.
"""

import hashlib
import json
import zipfile
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from geo311 import casework
from geo311.store import tables as t
from geo311_web.cli import cli

QUERY = """\
reference = "FOIA-2026-0142"
title = "Sanitation code complaints in ward 42, 2012"
requester = "A. Reporter, City News"
received = 2026-11-30

[search]
services = ["SCB"]
districts = ["wards_2015_2023:42"]
from = 2012-01-01
to = 2012-12-31
"""
PLANTED = ("Wilhelmina", "Quackenbush", "w.quackenbush@example.org", "(312) 555-0187",
           "device-ZZ-0001", "internal: caller is a city employee", "773-555-0166",
           "reopen STAFF-ONLY-REASON", "tester-clerk")


def _expected_ids(store):
    """The query's requests by plain SQL: SCB, local 2012, ward 42 of the active 2015 wards."""
    zone = ZoneInfo("America/Chicago")
    sr, rd, lv, ly = (t.service_requests.c, t.request_districts.c, t.layer_versions.c,
                      t.layers.c)
    version = (select(lv.id).join(t.layers, ly.id == lv.layer_id)
               .where(ly.name == "wards_2015_2023", lv.status == "active").scalar_subquery())
    stmt = (select(sr.id).join(t.request_districts, rd.request_id == sr.id)
            .where(rd.layer_version_id == version, rd.district_id == "42",
                   sr.service_code == "SCB",
                   sr.requested_datetime >= datetime(2012, 1, 1, tzinfo=zone),
                   sr.requested_datetime < datetime(2013, 1, 1, tzinfo=zone))
            .order_by(sr.id))
    with store.engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def test_a_records_package_from_the_shipped_data(demo_output, app, tmp_path):
    store = app.extensions["geo311"].store
    ids = _expected_ids(store)
    assert len(ids) > 100
    first, second, third = ids[:3]
    with store.engine.begin() as conn:
        conn.execute(insert(t.reporters).values(
            request_id=first, first_name="Wilhelmina", last_name="Quackenbush",
            email="w.quackenbush@example.org", phone="(312) 555-0187",
            device_id="device-ZZ-0001", account_id="", created=datetime(2012, 1, 5, tzinfo=ZoneInfo("UTC"))))
    casework.add_note(store, first, "internal: caller is a city employee",
                      visibility="internal", actor="tester-clerk")
    casework.add_note(store, second, "Inspector will call back at 773-555-0166",
                      visibility="public", actor="tester-clerk")
    casework.reopen(store, third, "reopen STAFF-ONLY-REASON", actor="tester-clerk")
    query_file = tmp_path / "foia-2026-0142.toml"
    query_file.write_text(QUERY)
    out = tmp_path / "foia-2026-0142.zip"

    result = app.test_cli_runner().invoke(cli, ["disclosure", "export", str(query_file),
                                                "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"records request FOIA-2026-0142: {len(ids)} requests" in result.output
    with zipfile.ZipFile(out) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files["manifest.json"])
    assert manifest["counts"]["requests"] == len(ids)
    for listed in manifest["files"]:
        assert hashlib.sha256(files[listed["name"]]).hexdigest() == listed["sha256"]
    features = json.loads(files["requests.geojson"])["features"]
    assert [f["id"] for f in features] == ids
    for name, data in files.items():
        for planted in PLANTED:
            assert planted.lower() not in data.decode().lower(), (name, planted)
    shown = {f["id"]: f["properties"] for f in features}
    assert [h["event"] for h in shown[third]["history"]] == ["status"]
    assert shown[second]["history"][0]["note"] == "Inspector will call back at [phone removed]"
    rules = {r["rule"]: r["count"] for r in json.loads(files["redaction_log.json"])["rules"]}
    assert rules["reporter-contact"] == 5 and rules["internal-note"] == 1
    assert rules["staff-reason"] == 1 and rules["phone-in-free-text"] == 1
    with store.engine.connect() as conn:  # the release itself is on the record
        audited = conn.execute(select(func.count()).select_from(t.audit_log).where(
            t.audit_log.c.action == "disclosure_exported")).scalar_one()
    assert audited == 1
