"""The Flask map server: adapts the geo311 core to HTTP, pages and maps."""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask, current_app

from geo311.config import Settings
from geo311.errors import SchemaOutdated
from geo311.intake import Context
from geo311.media import FileMediaStore, MediaStore, PhotoUpload
from geo311.store import Store, open_store
from geo311.store.tables import SCHEMA_VERSION


class Geo311:
    """Per-app state: settings, the one store (engine) and the district context."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store = open_store(settings.resolved_database_url)
        self._context: Context | None = None
        self._lock = threading.Lock()
        #: Residents' photos, in the instance folder (``instance/media``).
        self.media: MediaStore = FileMediaStore(Path(settings.instance_path) / "media")
        self._schema_ready = False

    def check_schema(self) -> None:
        """Refuse to serve a database this geo311 has not upgraded (once ready, never again).

        Serving an older schema would fail request by request with the database's own
        words ("column ... does not exist"); one clear answer says what to run.
        """
        if self._schema_ready:
            return
        found = self.store.db.schema_version()
        if found is None or found < SCHEMA_VERSION:
            have = "no geo311 schema" if found is None else f"schema version {found}"
            raise SchemaOutdated(f"the database has {have} but this geo311 needs version "
                                 f"{SCHEMA_VERSION}: run `geo311 init-db`")
        self._schema_ready = True

    def photo(self, data: bytes | None, host_url: str) -> PhotoUpload | None:
        """A report's photo to keep, linked from ``GEO311_PUBLIC_URL`` (else this host)."""
        if not data:
            return None
        return PhotoUpload(data, self.media, self.settings.public_url or host_url)

    def reset_context(self) -> None:
        """Forget the intake context (the city changed); the next ``context()`` rebuilds it."""
        with self._lock:
            self._context = None

    def context(self) -> Context:
        """The intake context, rebuilt when active layers or geocoding references change."""
        key, reference_key = self.store.addresses.context_key()
        with self._lock:
            if (self._context is None or self._context.key != key
                    or self._context.reference_key != reference_key):
                self._context = Context.from_store(
                    self.store, service_area_layer=self.settings.service_area_layer,
                    boundary_tolerance_m=self.settings.boundary_tolerance_m,
                    remote_geocoder=self.settings.remote_geocoder,
                    profile=self.settings.profile,
                    routing_file=self.settings.routing_path,
                )
            return self._context


def state() -> Geo311:
    """The geo311 state of the current app."""
    return current_app.extensions["geo311"]  # type: ignore[no-any-return]


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; settings come from ``GEO311_*`` variables unless given."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_prefixed_env("GEO311")
    if settings is None:
        settings = Settings.from_env(instance_path=Path(app.instance_path))
    app.config["SECRET_KEY"] = settings.session_secret()
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.extensions["geo311"] = Geo311(settings)

    from geo311_web import (
        alerts,
        auth,
        basemap,
        console,
        desk,
        disclosure,
        dispatch,
        errors,
        geocoding,
        gis,
        holds,
        hotspots,
        knowledge,
        kpi,
        navigation,
        notices,
        notify,
        ogc,
        open311,
        pages,
        queues,
        referrals,
    )

    @app.context_processor
    def _city() -> dict[str, object]:
        # The city profile's branding, for the page header (escaped like every text).
        # Without a tile server, maps draw geo311's own base map (static/basemap.js).
        return {"brand": state().settings.profile.branding,
                "own_basemap": not state().settings.tile_url}

    errors.register(app)
    app.before_request(lambda: state().check_schema())
    app.register_blueprint(pages.bp)
    app.register_blueprint(knowledge.bp)
    auth.init_app(app)
    navigation.init_app(app)
    app.register_blueprint(dispatch.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(desk.bp)
    app.register_blueprint(kpi.bp)
    app.register_blueprint(queues.bp)
    app.register_blueprint(holds.bp)
    app.register_blueprint(open311.bp)
    app.register_blueprint(geocoding.bp)
    app.register_blueprint(hotspots.bp)
    app.register_blueprint(gis.bp)
    app.register_blueprint(ogc.bp)
    app.register_blueprint(notify.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(basemap.bp)
    app.register_blueprint(disclosure.bp)
    app.register_blueprint(notices.bp)
    app.register_blueprint(referrals.bp)
    open311.post_limit(app.config)  # a bad limit stops start-up, not the first POST
    return app
