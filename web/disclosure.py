"""Records staff answer public-records requests: ``/staff/disclosures``.

The form is a records request's saved search (or its uploaded TOML file); the page
previews how many requests it covers and downloads its package or its query file.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, render_template, request
from werkzeug.datastructures import MultiDict

from geo311.disclosure import (
    RecordsQuery,
    build_package,
    count_matching,
    make_query,
    parse_query,
    query_toml,
)
from geo311.errors import InvalidRequest
from geo311.model import STATUSES
from geo311_web import state
from geo311_web.auth import actor, role_required

bp = Blueprint("disclosure", __name__)
ACTIONS = ("preview", "download", "query")
#: The largest query file the page reads.
MAX_QUERY_BYTES = 64_000


def _uploaded() -> RecordsQuery | None:
    """The query of an uploaded TOML file, if one came with the form."""
    upload = request.files.get("query_file")
    if upload is None or not upload.filename:
        return None
    raw = upload.read(MAX_QUERY_BYTES + 1)
    if len(raw) > MAX_QUERY_BYTES:
        raise InvalidRequest(f"the query file is larger than {MAX_QUERY_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the query file is expected to be UTF-8 text (TOML)") from exc
    return parse_query(text, "the query file")


def _from_form(form: MultiDict[str, str]) -> RecordsQuery:
    fields: dict[str, Any] = {k: form.get(k, "") for k in
                              ("reference", "title", "requester", "received", "from", "to",
                               "status", "text", "ids")}
    fields["services"] = [s for s in form.getlist("services") if s]
    fields["districts"] = [d for d in form.getlist("districts") if d]
    return make_query(fields)


def _values(query: RecordsQuery | None, form: MultiDict[str, str]) -> dict[str, Any]:
    """What the form shows: the query's values, else what was typed."""
    if query is None:
        return {"reference": form.get("reference", ""), "title": form.get("title", ""),
                "requester": form.get("requester", ""), "received": form.get("received", ""),
                "from": form.get("from", ""), "to": form.get("to", ""),
                "status": form.get("status", ""), "text": form.get("text", ""),
                "ids": form.get("ids", ""), "services": form.getlist("services"),
                "districts": form.getlist("districts")}
    return {"reference": query.reference, "title": query.title, "requester": query.requester,
            "received": query.received.isoformat(),
            "from": query.start.isoformat() if query.start else "",
            "to": query.end.isoformat() if query.end else "", "status": query.status or "",
            "text": query.text, "ids": ", ".join(str(i) for i in query.ids),
            "services": list(query.services),
            "districts": [f"{layer}:{d}" for layer, d in query.districts]}


def _page(values: dict[str, Any], *, count: int | None = None, error: str | None = None,
          status: int = 200) -> tuple[str, int]:
    store = state().store
    services = sorted(store.catalogue.services(), key=lambda s: s.name)
    districts = [(f"{layer}:{did}", f"{title}: {name}")
                 for layer, (title, names) in sorted(store.layers.active_district_names().items())
                 for did, name in sorted(names.items(), key=lambda kv: kv[1])]
    return render_template("disclosures.html", values=values, count=count, error=error,
                           services=services, districts=districts,
                           statuses=STATUSES), status


def _file_name(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", reference).strip("-.") or "records-request"


@bp.get("/staff/disclosures")
@role_required("records")
def disclosures() -> tuple[str, int]:
    """The records request form: a saved search, its preview and its package."""
    return _page(_values(None, MultiDict()))


@bp.post("/staff/disclosures")
@role_required("records")
def disclosure_action() -> Response | tuple[str, int]:
    """Preview the count, download the package, or download the query as TOML."""
    form = request.form
    query: RecordsQuery | None = None
    try:
        action = form.get("action", "preview")
        if action not in ACTIONS:
            raise InvalidRequest(f"action was {action!r} but is expected to be in {ACTIONS}")
        query = _uploaded() or _from_form(form)
        s = state()
        if action == "query":
            return Response(query_toml(query), mimetype="application/toml",
                            headers={"Content-Disposition": "attachment; filename="
                                     f"{_file_name(query.reference)}.toml"})
        if action == "preview":
            return _page(_values(query, form), count=count_matching(s.store, query,
                                                                    s.settings.zone))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "package.zip"
            build_package(s.store, query, path, zone=s.settings.zone, actor=actor())
            data = path.read_bytes()
        return Response(data, mimetype="application/zip", headers={
            "Content-Disposition": f"attachment; filename={_file_name(query.reference)}.zip"})
    except InvalidRequest as exc:
        return _page(_values(query, form), error=exc.message, status=400)
