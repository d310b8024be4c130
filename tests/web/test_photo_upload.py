"""Photos sent with reports on the web form and Open311: kept stripped, served safely, never half-stored."""

import io
import re

import pytest
from PIL import Image

from geo311.model import Service
from tests.core.test_photos import phone_photo
from tests.web.conftest import LOOP, OUTSIDE, PILSEN

pytestmark = pytest.mark.both_backends

V2 = "/open311/v2"


def _files(app):
    return sorted((app.extensions["geo311"].media.root).rglob("*.jpg"))


def _report(client, photo, at=LOOP, **form):
    data = {"service_code": "SDR", "lat": str(at[1]), "long": str(at[0]),
            "description": "Tyres dumped", **form}
    if photo is not None:
        data["photo"] = (io.BytesIO(photo), "IMG_0001.jpg")
    return client.post("/report", data=data, content_type="multipart/form-data")


def test_a_photo_on_the_web_form_is_kept_stripped_and_shown(app, client, city):
    made = _report(client, phone_photo())
    assert made.status_code == 200, made.get_data(as_text=True)
    [stored] = city.store.requests.query(limit=5)
    assert re.fullmatch(r"http://localhost/media/[0-9a-f]{32}\.jpg", stored.media_url)
    assert len(_files(app)) == 2  # the copy and its thumbnail, nothing else

    served = client.get(stored.media_url.replace("http://localhost", ""))
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in served.headers["Cache-Control"]
    kept = served.get_data()
    assert b"PhoneMaker" not in kept and len(Image.open(io.BytesIO(kept)).getexif()) == 0

    page = client.get(f"/requests/{stored.id}").get_data(as_text=True)
    thumb = stored.media_url.replace(".jpg", "_thumb.jpg").replace("http://localhost", "")
    assert f'src="http://localhost{thumb}"' in page and 'alt="Photo sent with the report' in page
    assert client.get(thumb).status_code == 200
    record = client.get(f"{V2}/requests/{stored.id}.json").get_json()[0]
    assert record["media_url"] == stored.media_url


@pytest.mark.parametrize(("photo", "at", "said"), [
    (b"MZ\x90\x00 not a picture at all", LOOP, "not an image"),
    (phone_photo()[:300], LOOP, "could not be read"),
    (phone_photo(), OUTSIDE, "outside the service area"),
])
def test_a_refused_report_or_photo_stores_nothing(app, client, city, photo, at, said):
    refused = _report(client, photo, at=at)
    assert refused.status_code in (400, 422) and said in refused.get_data(as_text=True)
    assert city.store.requests.count() == 0 and _files(app) == []


def test_open311_takes_a_media_file_and_keeps_media_url_for_links(app, client, city):
    made = client.post(f"{V2}/requests.json", content_type="multipart/form-data", data={
        "api_key": city.key, "service_code": "SDR", "lat": str(PILSEN[1]),
        "long": str(PILSEN[0]), "media": (io.BytesIO(phone_photo(orientation=1)), "a.jpg")})
    assert made.status_code == 200, made.get_data(as_text=True)
    request_id = made.get_json()[0]["service_request_id"]
    stored = city.store.requests.get(int(request_id))
    assert "/media/" in stored.media_url and len(_files(app)) == 2

    linked = client.post(f"{V2}/requests.json", data={
        "api_key": city.key, "service_code": "SDR", "lat": str(LOOP[1]), "long": str(LOOP[0]),
        "media_url": "https://photos.example/p.jpg"})
    assert city.store.requests.get(int(linked.get_json()[0]["service_request_id"])
                                   ).media_url == "https://photos.example/p.jpg"

    bad = client.post(f"{V2}/requests.json", content_type="multipart/form-data", data={
        "api_key": city.key, "service_code": "SDR", "lat": str(LOOP[1]),
        "long": str(LOOP[0] + 0.02), "media": (io.BytesIO(b"<svg/>"), "x.svg")})
    assert bad.status_code == 400
    assert "not an image" in bad.get_json()[0]["description"]
    assert city.store.requests.count() == 2 and len(_files(app)) == 2


def test_a_sensitive_services_photo_is_not_shown(app, client, city):
    city.store.catalogue.upsert([Service("SEN", "Sensitive thing", "Health")])
    city.store.catalogue.set_sensitive("SEN", True)
    made = _report(client, phone_photo(), service_code="SEN")
    assert made.status_code == 200, made.get_data(as_text=True)
    [stored] = city.store.requests.query(limit=5)
    page = client.get(f"/requests/{stored.id}").get_data(as_text=True)
    assert "/media/" not in page and 'id="photo"' not in page


def test_only_names_the_store_gives_are_served(client, city):
    for name in ("../instance/secret_key", "x.jpg", "0" * 32 + ".png", "0" * 32 + ".jpg"):
        assert client.get(f"/media/{name}").status_code == 404
