"""Web fixtures: a city with a service area, the shipped catalogue and an API key; mail
delivered to a real SMTP server on loopback."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from email import message_from_bytes
from email.policy import default as default_policy
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from shapely import box
from shapely.geometry import mapping

from geo311.catalogue import load_catalogue, read_catalogue
from geo311.intake import submit
from geo311.layers import load_layer
from geo311.model import NewRequest, Reporter
from geo311.notifications import Mailer
from tests.prepared import prepared_state

#: Two halves of a box around Chicago, split at lon -87.69: the service area.
WEST = box(-87.95, 41.64, -87.69, 42.03)
EAST = box(-87.69, 41.64, -87.52, 42.03)
LOOP = (-87.6321, 41.8837)  # east half
PILSEN = (-87.6700, 41.8560)  # east half, about 4.6 km from LOOP
AUSTIN = (-87.7650, 41.8940)  # west half
OUTSIDE = (-88.3000, 41.7600)  # Aurora, outside the city


def write_city(path):
    features = [{"type": "Feature", "properties": {"id": name, "name": name.title()},
                 "geometry": mapping(geom)} for name, geom in (("west", WEST), ("east", EAST))]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@prepared_state("city", fixtures=("city",))
def _city(store, workdir):
    load_layer(store, write_city(workdir / "city.geojson"), name="city", role="service_area",
               id_field="id", name_field="name", activate=True)
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    return store.accounts.create_api_key("tests")


@pytest.fixture
def city(app, prepared):
    """The app's store with a two-district service area, the Chicago catalogue and a key."""
    store = app.extensions["geo311"].store

    def report(code="SDR", at=LOOP, **kw):
        return submit(store, app.extensions["geo311"].context(),
                      NewRequest(code, lon=at[0], lat=at[1], **kw))

    return SimpleNamespace(store=store, key=prepared, report=report)


# --- mail on loopback: a real SMTP server (aiosmtpd) and an app that sends to it ----

PUBLIC_URL = "https://311.city.example"
MAIL_FROM = "City 311 <311@city.example>"


class Inbox:
    """What the loopback server received; ``answers`` are replies to DATA, used first."""

    def __init__(self):
        self.messages = []
        self.answers = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.answers:
                return self.answers.pop(0)
            msg = message_from_bytes(envelope.content, policy=default_policy)
            self.messages.append((envelope.rcpt_tos, msg))
        return "250 OK"

    def to(self, address):
        return [m for rcpts, m in self.messages if address in rcpts]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def mail_app(settings, smtp):
    from geo311_web import create_app

    app = create_app(dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                         mail_from=MAIL_FROM, public_url=PUBLIC_URL + "/"))
    app.config.update(TESTING=True)
    yield app
    app.extensions["geo311"].store.dispose()


@pytest.fixture
def city_mail(mail_app, prepared):
    """The store of ``mail_app`` with the city of tests/web/conftest.py, a mailer, a reporter."""
    s = mail_app.extensions["geo311"]

    def report(email, code="SDR", at=LOOP, language="", **kw):
        return submit(s.store, s.context(), NewRequest(
            code, lon=at[0], lat=at[1], reporter=Reporter(email=email, language=language), **kw))

    return dataclasses.make_dataclass("CityMail", ["store", "mailer", "report"])(
        s.store, Mailer.from_settings(s.settings), report)
