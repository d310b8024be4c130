"""The files of a public-records package, each escaped for what reads it.

CSV cells a spreadsheet would run as formulas start with ``'``; JSON writes ``<``,
``>`` and ``&`` as Unicode escapes (the text reads back the same, but no file holds
markup); the HTML summary escapes every value and runs no
script. Rows come in request order and every value is written the same way each
time, so the same records give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from geo311.kpi import defuse_formula

#: A package's files by name, in the order they are zipped.
FileSet = dict[str, bytes]

REQUEST_COLUMNS = ("id", "external_id", "service_code", "service_name", "agency", "status",
                   "status_notes", "description", "address", "zipcode", "lat", "long",
                   "requested_datetime", "updated_datetime", "closed_datetime",
                   "expected_datetime", "duplicate_of", "reporter_count", "media_url")
HISTORY_COLUMNS = ("request_id", "at", "event", "from", "to", "note", "by")
_TIMES = ("requested_datetime", "updated_datetime", "closed_datetime", "expected_datetime")


def utc_text(value: datetime | None) -> str:
    """A stored time as ISO 8601 UTC (``2021-01-03T14:05:00Z``); "" when there is none."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe_json(document: object) -> bytes:
    """``document`` as UTF-8 JSON (2-space indent) with ``<``, ``>`` and ``&`` escaped.

    Examples
    --------
    >>> b"<" in safe_json({"d": "<b>"}), json.loads(safe_json({"d": "<b>"}))
    (False, {'d': '<b>'})
    """
    return (_unmarked(json.dumps(document, ensure_ascii=False, indent=2)) + "\n").encode("utf-8")


def _unmarked(text: str) -> str:
    """JSON text with ``&``, ``<`` and ``>`` (only ever inside strings) as escapes."""
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    """A text cell made safe for spreadsheets; numbers as they are; None as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return defuse_formula(value)
    return value


def requests_csv(requests: Sequence[Mapping[str, Any]], layers: Sequence[str]) -> bytes:
    """One row per request: public columns, then ``district_<layer>`` per active layer."""
    rows = [[_cell(r[c]) for c in REQUEST_COLUMNS]
            + [_cell(r["districts"].get(layer)) for layer in layers] for r in requests]
    return _csv([*REQUEST_COLUMNS, *(f"district_{layer}" for layer in layers)], rows)


def history_csv(history: Sequence[Mapping[str, Any]]) -> bytes:
    """One row per public history event, by request then time (``at`` in UTC)."""
    return _csv(HISTORY_COLUMNS, [[_cell(e[c]) for c in HISTORY_COLUMNS] for e in history])


def requests_geojson(requests: Sequence[Mapping[str, Any]],
                     history: Sequence[Mapping[str, Any]]) -> bytes:
    """A FeatureCollection (WGS 84 lon/lat) with each request's districts and history.

    One feature a line, so a large package is written (and diffed) quickly.
    """
    events: dict[int, list[dict[str, Any]]] = {}
    for e in history:
        events.setdefault(e["request_id"], []).append({c: e[c] for c in HISTORY_COLUMNS[1:]})
    lines = []
    for r in requests:
        props = {c: r[c] if r[c] != "" or c not in _TIMES else None
                 for c in REQUEST_COLUMNS if c not in ("lat", "long")}
        located = r["long"] is not None and r["lat"] is not None
        lines.append(json.dumps({
            "type": "Feature", "id": r["id"],
            "geometry": {"type": "Point", "coordinates": [r["long"], r["lat"]]}
            if located else None,
            "properties": {**props, "districts": dict(sorted(r["districts"].items())),
                           "history": events.get(r["id"], [])}},
            ensure_ascii=False, separators=(",", ":")))
    body = ",\n".join(lines)
    text = '{"type":"FeatureCollection","features":[\n' + body + ("\n" if lines else "") + "]}\n"
    return _unmarked(text).encode("utf-8")


_STYLE = ("body{font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;"
          "color:#1a1a1a}table{border-collapse:collapse;margin:.5rem 0}"
          "th,td{border:1px solid #888;padding:.2rem .5rem;text-align:left}"
          "td.n{text-align:right}code{word-break:break-all}")


def _rows(cells: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    return "".join(
        "<tr>" + "".join(f'<td class="n">{html.escape(str(v))}</td>' if i in numeric
                         else f"<td>{html.escape(str(v))}</td>" for i, v in enumerate(row))
        + "</tr>\n" for row in cells)


def summary_html(described: Mapping[str, Any], requests: Sequence[Mapping[str, Any]],
                 files: Mapping[str, bytes], rules: Mapping[str, str]) -> bytes:
    """The human-readable summary: the request, what was found, what was redacted, files."""
    e = html.escape
    search = described["search"]
    counts = described["counts"]
    by_service = Counter((r["service_code"], r["service_name"]) for r in requests)
    by_status = Counter(r["status"] for r in requests)
    times = sorted(r["requested_datetime"] for r in requests)
    asked = [("Services", ", ".join(search["services"]) or "any"),
             ("Districts", ", ".join(search["districts"]) or "any"),
             ("Requested from", search["requested_from"] or "any time"),
             ("Requested before", search["requested_before"] or "any time"),
             ("Status", search["status"] or "any"), ("Text", search["text"] or "any"),
             ("Request numbers", ", ".join(str(i) for i in search["ids"]) or "any")]
    parts = [
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<title>Records request {e(described['reference'])}</title>\n",
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n",
        f"<h1>Records request {e(described['reference'])}</h1>\n",
        f"<p>{e(described['title'])}</p>\n" if described["title"] else "",
        "<dl>\n",
        f"<dt>Requester</dt><dd>{e(described['requester'] or 'not named')}</dd>\n",
        f"<dt>Received</dt><dd>{e(described['received'])}</dd>\n",
        f"<dt>Requests released</dt><dd id=\"request-count\">{counts['requests']}</dd>\n",
        f"<dt>History entries</dt><dd>{counts['history_events']}</dd>\n",
        "<dt>Requested between</dt><dd>"
        + (f"{e(times[0])} and {e(times[-1])}" if times else "none") + "</dd>\n",
        f"<dt>Made by</dt><dd>{e(described['generator'])}; times are UTC; "
        f"dates of the search are days in {e(described['time_zone'])}</dd>\n</dl>\n",
        "<h2>The search</h2>\n<table>\n<tbody>\n",
        "".join(f"<tr><th scope=\"row\">{e(k)}</th><td>{e(v)}</td></tr>\n" for k, v in asked),
        "</tbody>\n</table>\n<p>The query file <code>query.toml</code> reproduces this "
        "package from the same records.</p>\n",
        "<h2>Requests by service</h2>\n<table>\n<thead><tr><th scope=\"col\">Code</th>"
        "<th scope=\"col\">Service</th><th scope=\"col\">Requests</th></tr></thead>\n<tbody>\n",
        _rows([(code, name, n) for (code, name), n in
               sorted(by_service.items(), key=lambda kv: (-kv[1], kv[0]))], numeric=(2,)),
        "</tbody>\n</table>\n<h2>Requests by status</h2>\n<table>\n<thead><tr>"
        "<th scope=\"col\">Status</th><th scope=\"col\">Requests</th></tr></thead>\n<tbody>\n",
        _rows(sorted(by_status.items()), numeric=(1,)),
        "</tbody>\n</table>\n<h2>Redactions</h2>\n<p>What was withheld or masked, by rule; "
        "<code>redaction_log.json</code> says where, request by request, without the "
        "values.</p>\n<table>\n<thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">"
        "What it does</th><th scope=\"col\">Times applied</th></tr></thead>\n<tbody>\n",
        _rows([(rule, what, counts["redactions"].get(rule, 0)) for rule, what in rules.items()],
              numeric=(2,)),
        "</tbody>\n</table>\n<h2>Files</h2>\n<table>\n<thead><tr><th scope=\"col\">File</th>"
        "<th scope=\"col\">Bytes</th><th scope=\"col\">SHA-256</th></tr></thead>\n<tbody>\n",
        "".join(f"<tr><td>{e(name)}</td><td class=\"n\">{len(data)}</td><td><code>"
                f"{hashlib.sha256(data).hexdigest()}</code></td></tr>\n"
                for name, data in files.items()),
        "</tbody>\n</table>\n<p><code>manifest.json</code> lists the checksum of every file "
        "of the package, this summary included.</p>\n</main>\n</body>\n</html>\n",
    ]
    return "".join(parts).encode("utf-8")
