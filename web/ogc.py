"""OGC API - Features at ``/ogc``: the documents of ``geo311.ogc`` as HTTP responses."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for

from geo311.errors import InvalidRequest
from geo311.ogc import documents as ogc_documents
from geo311.ogc import features as ogc_features
from geo311.ogc import params as ogc_params
from geo311_web import state

bp = Blueprint("ogc", __name__, url_prefix="/ogc")


def _base() -> str:
    return url_for("ogc.landing", _external=True).rstrip("/")


def _args(allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string, each parameter once (unknown or repeated ones: 400)."""
    return ogc_params.query_args(request.args.to_dict(flat=False), allowed)


def _wants_html() -> bool:
    fmt = request.args.get("f")
    if fmt is not None:
        if fmt not in ("json", "html"):
            raise InvalidRequest(f"f was {fmt!r} but is expected to be json or html")
        return fmt == "html"
    best = request.accept_mimetypes.best_match(
        [ogc_params.GEOJSON, ogc_params.JSON, ogc_params.OPENAPI.split(";")[0], ogc_params.HTML])
    return best == ogc_params.HTML


def _respond(document: dict[str, Any], media_type: str, title: str) -> Response:
    if _wants_html():
        return Response(render_template("ogc.html", title=title, doc=document), 200,
                        content_type="text/html; charset=utf-8")
    return Response(json.dumps(document, default=str), 200, content_type=media_type)


@bp.get("", strict_slashes=False)
def landing() -> Response:
    """Landing page."""
    _args(("f",))
    return _respond(ogc_documents.landing_page(_base()), ogc_params.JSON,
                    "geo311 OGC API - Features")


@bp.get("/conformance")
def conformance() -> Response:
    """Conformance classes."""
    _args(("f",))
    return _respond(ogc_documents.conformance(), ogc_params.JSON, "Conformance")


@bp.get("/api")
def api() -> Response:
    """The OpenAPI 3.0 definition."""
    _args(("f",))
    document = ogc_documents.openapi_document(_base(), ogc_features.list_collections(state().store))
    return _respond(document, ogc_params.OPENAPI, "API definition")


@bp.get("/collections")
def collections() -> Response:
    """Every collection."""
    _args(("f",))
    document = ogc_documents.collections_document(
        _base(), ogc_features.list_collections(state().store))
    return _respond(document, ogc_params.JSON, "Collections")


@bp.get("/collections/<collection_id>")
def collection(collection_id: str) -> Response:
    """One collection's metadata."""
    _args(("f",))
    c = ogc_features.find_collection(state().store, collection_id)
    return _respond(ogc_documents.collection_document(_base(), c), ogc_params.JSON, c.title)


@bp.get("/collections/<collection_id>/items")
def items(collection_id: str) -> Response:
    """A page of features: bbox, datetime, limit and offset (and request filters)."""
    store = state().store
    c = ogc_features.find_collection(store, collection_id)
    args = _args(c.params)
    q = ogc_params.ItemQuery.from_args(args, c)
    features, matched = ogc_features.find_features(store, c, q)
    document = ogc_documents.items_document(_base(), c, q, args, features, matched)
    return _respond(document, ogc_params.GEOJSON, c.title)


@bp.get("/collections/<collection_id>/items/<fid>")
def item(collection_id: str, fid: str) -> Response:
    """One feature."""
    _args(("f",))
    store = state().store
    c = ogc_features.find_collection(store, collection_id)
    document = ogc_documents.feature_document(_base(), c, ogc_features.find_feature(store, c, fid))
    return _respond(document, ogc_params.GEOJSON, f"{c.title}: {fid}")
