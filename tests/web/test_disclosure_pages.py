"""The records staff page ``/staff/disclosures`` and ``geo311 disclosure export``."""

import io
import zipfile
from datetime import date

import pytest

from geo311.disclosure import RecordsQuery, build_package
from geo311_web.cli import cli
from tests.disclosure_seed import SECRETS
from tests.prepared import starts_from

starts_from("disclosure_seeded", "seeded", module=__name__)

QUERY = """\
reference = "FOIA-2026-7"
title = "Sanitation <i>complaints</i>"
requester = "A. Reporter"
received = 2026-11-30

[search]
services = ["SCB"]
"""


@pytest.fixture
def seeded(app, prepared):
    return prepared


def _form(**extra):
    return {"reference": "FOIA-2026-7", "title": "Sanitation <i>complaints</i>",
            "requester": "A. Reporter", "received": "2026-11-30", "services": ["SCB"],
            **extra}


def test_only_records_staff_and_admins_open_the_page(seeded, staff_client, client):
    assert staff_client("records").get("/staff/disclosures").status_code == 200
    assert staff_client("admin").get("/staff/disclosures").status_code == 200
    for role in ("agent", "dispatcher", "planner", "gis"):
        other = staff_client(role)
        assert other.get("/staff/disclosures").status_code == 403, role
        assert other.post("/staff/disclosures", data=_form(action="download")).status_code == 403
    assert client.get("/staff/disclosures").status_code == 302  # to the login page


def test_preview_counts_what_the_package_holds(seeded, staff_client, app):
    records = staff_client("records")
    r = records.post("/staff/disclosures", data=_form(action="preview"))
    html = r.get_data(as_text=True)
    store = app.extensions["geo311"].store
    expected = sum(1 for i in [*seeded.ids, seeded.sensitive]
                   if store.requests.get(i).service_code == "SCB")
    assert r.status_code == 200 and f'<strong id="preview-count">{expected}</strong>' in html
    assert "Sanitation &lt;i&gt;complaints&lt;/i&gt;" in html and "<i>complaints" not in html
    assert 'value="SCB" selected' in html  # the form keeps the query


def test_the_page_downloads_the_package_the_command_builds(seeded, staff_client, app, runner,
                                                            tmp_path):
    records = staff_client("records")
    r = records.post("/staff/disclosures", data=_form(action="download"))
    assert r.status_code == 200 and r.mimetype == "application/zip"
    assert r.headers["Content-Disposition"] == "attachment; filename=FOIA-2026-7.zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        texts = {n: zf.read(n).decode() for n in zf.namelist()}
    assert all(s.lower() not in t.lower() for t in texts.values() for s in SECRETS)

    query_file = tmp_path / "q.toml"
    query_file.write_text(QUERY)
    out = tmp_path / "out.zip"
    result = runner.invoke(cli, ["disclosure", "export", str(query_file), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == r.data  # one query, one package, whichever way it is asked
    assert "records request FOIA-2026-7:" in result.output and "sha256" in result.output
    store = app.extensions["geo311"].store
    actors = [e["actor"] for e in store.audit.entries("disclosure")]
    assert actors == ["records-user", "cli"]


def test_an_uploaded_query_file_fills_the_form_and_downloads_as_toml(seeded, staff_client):
    records = staff_client("records")
    r = records.post("/staff/disclosures", data={
        "action": "preview", "reference": "",
        "query_file": (io.BytesIO(QUERY.encode()), "q.toml")},
        content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'value="FOIA-2026-7"' in html and "preview-count" in html
    toml = records.post("/staff/disclosures", data=_form(action="query"))
    assert toml.status_code == 200
    assert toml.headers["Content-Disposition"] == "attachment; filename=FOIA-2026-7.toml"
    assert 'services = ["SCB"]' in toml.get_data(as_text=True)


@pytest.mark.parametrize(("data", "message"), [
    ({"reference": "", "received": "2026-11-30"}, "reference is required"),
    ({"reference": "R", "received": "2026-11-30", "services": ["NOPE"]},
     "services [&#39;NOPE&#39;] are not in the service catalogue"),
    ({"reference": "R", "received": "2026-11-30", "from": "2026-02-01", "to": "2026-01-01"},
     "to was 2026-01-01 but is expected on or after from 2026-02-01"),
    ({"reference": "R", "received": "2026-11-30", "ids": "12, x"}, "an id was &#39;x&#39;"),
])
def test_a_bad_form_is_shown_again_with_its_message(seeded, staff_client, data, message):
    r = staff_client("records").post("/staff/disclosures", data={**data, "action": "download"})
    assert r.status_code == 400 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert message in html and 'id="form-error"' in html


def test_a_bad_upload_is_refused_with_its_message(seeded, staff_client):
    r = staff_client("records").post("/staff/disclosures", data={
        "action": "preview", "query_file": (io.BytesIO(b"reference = [\n"), "q.toml")},
        content_type="multipart/form-data")
    assert r.status_code == 400 and "the query file is not valid TOML" in r.get_data(as_text=True)


def test_a_form_without_its_csrf_token_is_refused(seeded, app, staff_client):
    records = staff_client("records")
    records.environ_base.pop("HTTP_X_CSRFTOKEN")
    r = records.post("/staff/disclosures", data=_form(action="download"))
    assert r.status_code == 400 and r.mimetype != "application/zip"


def test_the_command_names_a_bad_query_file(seeded, runner, tmp_path, app):
    bad = tmp_path / "bad.toml"
    bad.write_text('reference = "R"\nreceived = 2026-11-30\nward = 3\n')
    result = runner.invoke(cli, ["disclosure", "export", str(bad), "--output",
                                 str(tmp_path / "x.zip")])
    assert result.exit_code == 1 and "unknown keys ['ward']" in result.output
    assert not (tmp_path / "x.zip").exists()
    store = app.extensions["geo311"].store
    good = build_package(store, RecordsQuery("R", date(2026, 11, 30), ids=(seeded.ids[0],)),
                         tmp_path / "one.zip", zone=app.extensions["geo311"].settings.zone)
    assert good.requests == 1
