"""Open311 GeoReport v2 over HTTP: ``/open311/v2/``, discovery and the bulk export.

Views read parameters, call ``geo311.open311`` and ``geo311.open311_service``, and write
the document in the format the URL ends with. Errors are rendered by ``web/errors.py``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
from flask import Blueprint, Response, current_app, request, stream_with_context
from werkzeug.http import parse_options_header

from geo311 import open311
from geo311.errors import ConfigError, InvalidRequest, NotFound
from geo311.kpi import satisfaction_table
from geo311.open311_records import RecordPage, request_page
from geo311.open311_service import Catalogue, check_jurisdiction, create_request
from geo311.store.rows import now_utc
from geo311_web import state
from geo311_web.languages import reader_language

bp = Blueprint("open311", __name__, url_prefix="/open311")

FMT = "<any(xml, json):fmt>"
_ROOTS = {"services": "services", "definition": "service_definition",
          "requests": "service_requests", "discovery": "discovery"}


def post_limit(config: Mapping[str, Any]) -> tuple[int, float]:
    """``OPEN311_POST_LIMIT`` (COUNT/SECONDS, default 60/60) as numbers; checked at start-up."""
    text = str(config.get("OPEN311_POST_LIMIT", "60/60"))
    try:
        count, seconds = (float(p) for p in text.split("/"))
    except ValueError:
        count = seconds = -1.0
    if count < 1 or seconds <= 0 or count != int(count):
        raise ConfigError(f"GEO311_OPEN311_POST_LIMIT was {text!r} but is expected as "
                          "COUNT/SECONDS with a whole COUNT of at least 1, e.g. 60/60")
    return int(count), seconds


def _catalogue() -> Catalogue:
    found = current_app.extensions.get("open311_catalogue")
    if found is None:
        found = current_app.extensions["open311_catalogue"] = Catalogue(state().store)
    return found  # type: ignore[no-any-return]


@bp.before_request
def _quote_unquoted_boundary() -> None:
    """Read ``boundary====17===`` as the boundary ``===17===``, as its sender meant.

    Some clients (OneBusAway's Java one) send a multipart boundary that holds ``=``
    without quoting it; werkzeug then reads no boundary, and the form as empty. The
    header is rewritten quoted before anything parses it.
    """
    raw = request.environ.get("CONTENT_TYPE", "")
    found = re.search(r";\s*boundary=([^\";][^;]*)", raw, re.IGNORECASE)
    if not found or not raw.lower().lstrip().startswith("multipart/"):
        return
    boundary = found.group(1).strip()
    if parse_options_header(raw)[1].get("boundary") != boundary and "\\" not in boundary:
        request.environ["CONTENT_TYPE"] = (f'{raw[:found.start()]}; boundary="{boundary}"'
                                           f"{raw[found.end():]}")


def _params() -> dict[str, list[str]]:
    """Query string and form together, every value kept.

    An ``api_key`` in the body wins over one in the query string (a client may put its
    key in both): a secret is better sent in the body.
    """
    merged = request.args.to_dict(flat=False)
    form = request.form.to_dict(flat=False)
    if any(v for v in form.get("api_key", [])):
        merged.pop("api_key", None)
    for key, values in form.items():
        merged.setdefault(key, []).extend(values)
    return merged


def _check_body() -> None:
    """Refuse a POST body that could not be read, rather than treat it as an empty form."""
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise InvalidRequest(f"POST requests is expected as application/x-www-form-urlencoded"
                             f", not {request.mimetype or 'no content type'}")
    if request.mimetype == "multipart/form-data" and (request.content_length or 0) > 0 \
            and not request.form and not request.files:
        boundary = request.mimetype_params.get("boundary")
        raise InvalidRequest(
            "the request body could not be read as multipart/form-data "
            f"({'with boundary ' + open311.shown(boundary) if boundary else 'no boundary'}"
            "): no part was found")


def _jurisdiction() -> str:
    return str(current_app.config.get("OPEN311_JURISDICTION_ID", ""))


def _check_jurisdiction(params: dict[str, list[str]]) -> None:
    check_jurisdiction(params, _jurisdiction())


def _respond(fmt: str, kind: str, document: Any, status: int = 200) -> Response:
    if fmt == "xml":
        body: bytes | str = open311.to_xml(_ROOTS[kind], document)
    else:
        body = open311.to_json(document)
    return Response(body, status=status, content_type=open311.FORMATS[fmt])


@bp.get(f"/discovery.{FMT}")
def discovery(fmt: str) -> Response:
    """Service Discovery: endpoints, formats, contact, how to get a key, extensions."""
    s = state()
    config = current_app.config
    document = open311.discovery(
        request.host_url.rstrip("/"), changeset=s.store.catalogue.changed(),
        contact=str(config.get("OPEN311_CONTACT",
                               "Ask the city's 311 service for help with this API.")),
        key_service=str(config.get(
            "OPEN311_KEY_SERVICE",
            "Ask the city's 311 administrators for an API key (they issue one with "
            "`geo311 api-keys create NAME`). Reading needs no key; POST needs one.")),
        zone=s.settings.zone)
    return _respond(fmt, "discovery", document)


@bp.get(f"/v2/services.{FMT}")
def services(fmt: str) -> Response:
    """GET Service List."""
    _check_jurisdiction(_params())
    return _respond(fmt, "services", open311.service_list(state().store.catalogue.services()))


@bp.get(f"/v2/services/<code>.{FMT}")
def service_definition(code: str, fmt: str) -> Response:
    """GET Service Definition."""
    _check_jurisdiction(_params())
    service = state().store.catalogue.service(code)
    return _respond(fmt, "definition", open311.service_definition(service))


@bp.get(f"/v2/requests.{FMT}")
def requests_list(fmt: str) -> Response:
    """GET Service Requests (``extensions=true`` adds the extended attributes)."""
    params = _params()
    _check_jurisdiction(params)
    s = state()
    q = open311.parse_request_query(params, now_utc(), s.settings.zone)
    page = request_page(
        s.store, s.settings.zone, ids=q.ids, service_codes=q.service_codes,
        statuses=q.statuses, start=q.start, end=q.end, bbox=q.bbox, near=q.near,
        updated_after=q.updated_after, updated_before=q.updated_before, limit=q.page_size,
        offset=(q.page - 1) * q.page_size)
    return _respond_page(fmt, page, q.extensions)


def _respond_page(fmt: str, page: RecordPage, extensions: bool) -> Response:
    """A page of stored records; as extended JSON, their texts joined without parsing."""
    if fmt == "json":
        return Response(page.json(extensions=extensions), content_type=open311.FORMATS[fmt])
    return _respond(fmt, "requests", page.documents(extensions=extensions))


@bp.get(f"/v2/requests/<request_id>.{FMT}")
def request_one(request_id: str, fmt: str) -> Response:
    """GET Service Request: a list of one."""
    params = _params()
    _check_jurisdiction(params)
    if not re.fullmatch(r"[0-9]{1,30}", request_id):
        raise NotFound(f"service request {open311.shown(request_id)} does not exist")
    s = state()
    page = request_page(s.store, s.settings.zone, ids=[int(request_id)])
    if not page:
        raise NotFound(f"service request {request_id} does not exist")
    return _respond_page(fmt, page, open311.wants_extensions(params))


def _satisfaction_document(table: pd.DataFrame, layer: str) -> list[dict[str, Any]]:
    """The satisfaction extension from ``kpi.satisfaction_table``: one entry per row.

    Ratings only: survey comments are never published here.
    """
    def number(value: Any) -> float | None:
        return None if value != value else round(float(value), 4)

    return [{"by": row["by"], "key": row["key"], "layer": layer if row["by"] == "district"
             else None, "answers": int(row["answers"]), "mean_rating": number(row["mean_rating"]),
             "satisfied_share": number(row["satisfied_share"]),
             "dissatisfied_share": number(row["dissatisfied_share"])}
            for row in table.to_dict("records")]


@bp.get("/v2/satisfaction.json")
def satisfaction() -> Response:
    """Residents' survey ratings by district, service and agency (an extension)."""
    params = _params()
    _check_jurisdiction(params)
    s = state()
    store, zone = s.store, s.settings.zone
    active = store.layers.versions(active_only=True)
    layer = open311.single_value(params, "layer") or next(
        (v.layer for v in active if v.role == "district"), active[0].layer if active else "")
    if not layer:
        raise NotFound("no boundary layer is active, so there is nothing to group by")
    version = store.layers.version(layer)
    start, end = (open311.parse_datetime(v, name, zone) if v else None
                  for name, v in (("start_date", open311.single_value(params, "start_date")),
                                  ("end_date", open311.single_value(params, "end_date"))))
    if start and end and end < start:
        raise InvalidRequest("end_date is before start_date")
    table = satisfaction_table(store.surveys.frame(version.id, start, end))
    return _respond("json", "satisfaction",
                    _satisfaction_document(table, layer))


@bp.get(f"/v2/tokens/<token>.{FMT}")
def token(token: str, fmt: str) -> Response:
    """GET service_request_id from a token: every service is realtime, so none exist."""
    raise NotFound(f"token {token!r} was not found: every service here is realtime and "
                   "returns its service_request_id at once")


@bp.post(f"/v2/requests.{FMT}")
def requests_create(fmt: str) -> Response:
    """POST Service Request (form-encoded or multipart with a ``media`` photo; an api_key)."""
    _check_body()
    s = state()
    media = request.files.get("media")
    created = create_request(
        s.store, s.context, _catalogue(), _params(), rate_limit=post_limit(current_app.config),
        jurisdiction_id=_jurisdiction(), language=reader_language(),
        photo=s.photo(media.read() if media else None, request.host_url))
    return _respond(fmt, "requests", created.document())


@bp.get("/bulk/requests.<any(csv, json):fmt>")
def bulk(fmt: str) -> Response:
    """GeoReport Bulk export of every request (public fields), optionally by date."""
    params = _params()
    s = state()
    zone = s.settings.zone
    start_text = open311.single_value(params, "start_date")
    end_text = open311.single_value(params, "end_date")
    start = open311.parse_datetime(start_text, "start_date", zone) if start_text else None
    end = open311.parse_datetime(end_text, "end_date", zone) if end_text else None
    agencies = {sv.code: sv.agency for sv in s.store.catalogue.services()}

    def records() -> Iterator[dict[str, Any]]:
        for frame in s.store.requests.export_frames(include_private=False):
            requested = pd.to_datetime(frame["requested_datetime"], utc=True)
            keep = pd.Series(True, index=frame.index)
            if start is not None:
                keep &= requested >= start
            if end is not None:
                keep &= requested <= end
            for row in frame[keep.to_numpy()].to_dict("records"):
                yield open311.bulk_record(row, zone, agencies.get(row["service_code"], ""))

    def as_csv() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=open311.BULK_FIELDS, lineterminator="\r\n")
        writer.writeheader()
        for i, record in enumerate(records()):
            writer.writerow(record)
            if i % 1000 == 999:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    def as_json() -> Iterator[str]:
        yield "["
        for i, record in enumerate(records()):
            yield ("," if i else "") + json.dumps(record, ensure_ascii=False)
        yield "]"

    body = as_csv() if fmt == "csv" else as_json()
    mimetype = "text/csv; charset=utf-8" if fmt == "csv" else open311.FORMATS["json"]
    return Response(stream_with_context(body), content_type=mimetype)
