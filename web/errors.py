"""The one place errors are rendered: JSON for the API, XML or JSON for Open311, HTML for pages."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from geo311 import open311
from geo311.errors import Geo311Error, TooManyRequests

LOGGER = logging.getLogger(__name__)


def _wants_json() -> bool:
    return (request.path.startswith(("/api/", "/open311/"))
            or request.accept_mimetypes.best == "application/json")


def _open311(status: int, message: str) -> tuple[Response, int]:
    """GeoReport v2 errors: 404 missing, 403 key, 429 rate limit, 400 for anything else."""
    if status not in (403, 404, 429):
        status = 400
    document = open311.errors_document(status, message)
    if request.path.endswith(".xml"):
        body: bytes | str = open311.to_xml("errors", document)
        mimetype = open311.FORMATS["xml"]
    else:
        body, mimetype = open311.to_json(document), open311.FORMATS["json"]
    return Response(body, status=status, content_type=mimetype), status


def _render(status: int, code: str, message: str) -> tuple[Response | str, int]:
    if request.path.startswith("/open311/"):
        return _open311(status, message)
    if request.path.startswith("/ogc") and request.args.get("f") != "html":
        return jsonify({"code": code, "description": message}), status  # OGC API exception
    if _wants_json():
        return jsonify([{"code": status, "description": message}]), status
    return render_template("error.html", status=status, code=code, message=message), status


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""

    @app.errorhandler(Geo311Error)
    def _domain(exc: Geo311Error) -> tuple[Response | str, int]:
        body, status = _render(exc.status, exc.code, exc.message)
        if isinstance(exc, TooManyRequests) and isinstance(body, Response):
            body.headers["Retry-After"] = str(exc.retry_after_s)
        return body, status

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response | str, int]:
        description = exc.description or exc.name
        if exc.code == 413 and "bytes allowed" not in description:
            # Whoever reads the body first (a form's CSRF check, a view) hits the limit.
            description = (f"the upload is larger than the {request.max_content_length or 0:,} "
                           "bytes allowed (GEO311_MAX_UPLOAD_BYTES); nothing was stored")
        return _render(exc.code or 500, exc.name, description)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response | str, int]:
        LOGGER.exception("unhandled error on %s", request.path)
        return _render(500, "error", "internal error; it has been logged")
