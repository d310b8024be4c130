"""A server on a database its geo311 has not upgraded says what to run, once per request."""

from sqlalchemy import update

from geo311.store import tables as t


def test_an_outdated_schema_is_503_naming_init_db_until_upgraded(app, client):
    store = app.extensions["geo311"].store
    with store.engine.begin() as conn:
        conn.execute(update(t.schema_info).where(t.schema_info.c.key == "version")
                     .values(value="3"))
    answer = client.get("/open311/v2/requests.json")
    assert answer.status_code == 400  # Open311 knows 400, 403, 404 (and 429) only
    assert answer.get_json() == [{
        "code": 400, "description": "the database has schema version 3 but this geo311 "
        f"needs version {t.SCHEMA_VERSION}: run `geo311 init-db`"}]
    assert client.get("/healthz").status_code == 503
    page = client.get("/")
    assert page.status_code == 503 and b"geo311 init-db" in page.data
    store.schema.init()
    assert client.get("/open311/v2/requests.json").status_code == 200
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_an_empty_database_is_503_too(tmp_path):
    from geo311.config import Settings
    from geo311_web import create_app

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.sqlite'}",
                              instance_path=tmp_path / "instance"))
    answer = app.test_client().get("/api/geocode?q=1+N+State+St")
    assert answer.status_code == 503
    assert "has no geo311 schema" in answer.get_json()[0]["description"]
    app.extensions["geo311"].store.dispose()
