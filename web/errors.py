"""The one place errors are rendered: JSON for the API, HTML for pages."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from geo311.errors import Geo311Error

LOGGER = logging.getLogger(__name__)


def _wants_json() -> bool:
    return (request.path.startswith(("/api/", "/open311/"))
            or request.accept_mimetypes.best == "application/json")


def _render(status: int, code: str, message: str) -> tuple[Response | str, int]:
    if request.path.startswith("/ogc") and request.args.get("f") != "html":
        return jsonify({"code": code, "description": message}), status  # OGC API exception
    if _wants_json():
        return jsonify([{"code": status, "description": message}]), status
    return render_template("error.html", status=status, code=code, message=message), status


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""

    @app.errorhandler(Geo311Error)
    def _domain(exc: Geo311Error) -> tuple[Response | str, int]:
        return _render(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response | str, int]:
        return _render(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response | str, int]:
        LOGGER.exception("unhandled error on %s", request.path)
        return _render(500, "error", "internal error; it has been logged")
