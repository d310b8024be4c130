"""GIS staff pages: upload a boundary file, read its validation report and diff, activate it."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from geo311.errors import InvalidRequest, LayerError
from geo311.export import LAYER_FORMATS, export_layer
from geo311.layerdefs import ROLES
from geo311.layers import (
    activate_version,
    describe_layer,
    diff_version,
    load_layer,
    retire_layer,
)
from geo311_web import maps, state
from geo311_web.auth import actor, require_role

bp = Blueprint("gis", __name__, url_prefix="/gis")

#: What the upload form takes: a zipped shapefile, GeoJSON or a GeoPackage.
UPLOAD_SUFFIXES = {".zip": "zipped shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
                   ".gpkg": "GeoPackage"}
EXPORT_TYPES = {"shp": ("application/zip", "zip"), "geojson": ("application/geo+json", "geojson"),
                "gpkg": ("application/geopackage+sqlite3", "gpkg")}
_AT = re.compile(r"at \((-?[\d.]+), (-?[\d.]+)\)")


@bp.before_request
def _staff_only() -> Response | None:
    """Every route here is for GIS staff (role gis, or admin)."""
    return require_role("gis")


def _text(field: str) -> str | None:
    value = request.form.get(field, "").strip()
    return value or None


@bp.get("/")
def home() -> str:
    """Layers with their versions, report links, exports and the upload form."""
    versions = state().store.layers.versions()
    return render_template("gis/home.html", versions=versions, formats=LAYER_FORMATS,
                           roles=ROLES, suffixes=", ".join(UPLOAD_SUFFIXES),
                           max_bytes=state().settings.max_upload_bytes)


@bp.post("/upload")
def upload() -> Response:
    """Store an uploaded boundary file as a new inactive version, then show its report."""
    s = state()
    try:
        sent = request.files.get("file")
    except RequestEntityTooLarge as exc:
        raise RequestEntityTooLarge(
            f"the upload is larger than the {request.max_content_length or 0:,} bytes allowed "
            "(GEO311_MAX_UPLOAD_BYTES); nothing was stored") from exc
    if sent is None or not sent.filename:
        raise InvalidRequest("choose a file to upload (field 'file')")
    filename = secure_filename(sent.filename) or "upload"
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidRequest(
            f"{sent.filename!r} has extension {suffix or 'none'!r} but the upload takes "
            f"{', '.join(f'{k} ({v})' for k, v in UPLOAD_SUFFIXES.items())}; nothing was stored")
    name = _text("name")
    if name is None:
        raise InvalidRequest("a layer name is required (field 'name')")
    role = request.form.get("role", "district")
    with tempfile.TemporaryDirectory(prefix="geo311-upload-") as folder:
        path = Path(folder) / filename
        sent.save(path)
        try:
            result = load_layer(
                s.store, path, name=name, title=_text("title") or "", role=role,
                id_field=_text("id_field"), name_field=_text("name_field"), crs=_text("crs"),
                layer=_text("layer"), activate=False, loaded_by=actor(),
                max_unzipped_bytes=s.settings.max_unzipped_bytes,
                boundary_tolerance_m=s.settings.boundary_tolerance_m,
                service_area=s.settings.service_area_layer,
            )
        except LayerError as exc:  # name the file as sent, not the server's temporary path
            raise LayerError(exc.message.replace(f"{folder}/", "")) from exc
    v = result.version
    return redirect(url_for("gis.report", name=v.layer, version=v.version), code=303)


def _replaces() -> str | None:
    return request.args.get("replaces") or request.form.get("replaces") or None


@bp.get("/layers/<name>/versions/<int:version>/report.json")
def report_json(name: str, version: int) -> Response:
    """The validation report of one version as JSON."""
    return jsonify(describe_layer(state().store, name, version))


@bp.get("/layers/<name>/versions/<int:version>/diff.json")
def diff_json(name: str, version: int) -> Response:
    """Dry run of activating one version, as JSON."""
    s = state()
    diff = diff_version(s.store, name, version, replaces=_replaces(),
                        boundary_tolerance_m=s.settings.boundary_tolerance_m)
    return jsonify(diff.to_dict())


@bp.get("/layers/<name>/versions/<int:version>/report")
def report(name: str, version: int) -> str:
    """The validation report with a map of the features and the findings, and the diff."""
    s = state()
    info = describe_layer(s.store, name, version)
    m = maps.base_map(s.settings.tile_url)
    features = s.store.layers.features(name, version)
    maps.add_districts(m, features, info["title"])
    findings = {
        "problems": maps.add_points(m, [
            {"lon": float(hit[1]), "lat": float(hit[2]),
             "label": f"feature {p['feature']} ({p['district_id']}): {p['problem']} "
                      f"-> {p['action']}"}
            for p in info["problems"] if (hit := _AT.search(p["problem"]))], "repairs", "#e6550d"),
        "overlaps": maps.add_points(m, [
            {**o, "label": f"overlap of {' & '.join(o['ids'])}: {o['area_m2']:,.0f} m²"}
            for o in info["overlaps"]], "overlaps", "#756bb1"),
        "gaps": maps.add_points(m, [
            {**g, "label": f"gap by {', '.join(g['ids'])}: {g['area_m2']:,.0f} m²"}
            for g in info["gaps"]], "gaps", "#31a354"),
        "outside": maps.add_points(m, [
            {**o, "label": f"{o['district_id']} beyond the service area: "
                        f"{o['outside_m2']:,.0f} m²"}
            for o in info["outside"]], "beyond the service area", "#de2d26"),
    }
    active_layers = [v.layer for v in s.store.layers.versions(active_only=True) if v.layer != name]
    replaces = _replaces()
    diff = None
    if info["status"] != "active":
        diff = diff_version(s.store, name, version, replaces=replaces,
                            boundary_tolerance_m=s.settings.boundary_tolerance_m)
    return render_template("gis/report.html", info=info, parts=maps.map_parts(m),
                           findings=findings, diff=diff, replaces=replaces,
                           active_layers=active_layers, formats=LAYER_FORMATS)


@bp.post("/layers/<name>/versions/<int:version>/activate")
def activate(name: str, version: int) -> Response:
    """Activate a version (one transaction, audited), retiring the layer it replaces."""
    s = state()
    activate_version(s.store, name, version, actor=actor(), replaces=_replaces(),
                     boundary_tolerance_m=s.settings.boundary_tolerance_m,
                     force=request.form.get("force") == "1")
    return redirect(url_for("gis.report", name=name, version=version), code=303)


@bp.post("/layers/<name>/retire")
def retire(name: str) -> Response:
    """Retire a layer; requests keep the districts they got from it."""
    s = state()
    retire_layer(s.store, name, actor=actor(), service_area=_text("service_area"),
                 force=request.form.get("force") == "1",
                 configured_service_area=s.settings.service_area_layer)
    return redirect(url_for("gis.home"), code=303)


@bp.get("/layers/<name>/export.<fmt>")
def export(name: str, fmt: str) -> Response:
    """A layer version (default: active) as zipped shapefile, GeoJSON or GeoPackage."""
    if fmt not in EXPORT_TYPES:
        raise InvalidRequest(f"format was {fmt!r} but is expected to be in {list(EXPORT_TYPES)}")
    version = request.args.get("version", type=int)
    mimetype, suffix = EXPORT_TYPES[fmt]
    with tempfile.TemporaryDirectory(prefix="geo311-export-") as folder:
        path = Path(folder) / f"{name}.{suffix}"
        export_layer(state().store, name, path, fmt, version=version)
        data = path.read_bytes()
    import io

    label = f"{name}" + (f"_v{version}" if version else "")
    return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True,
                     download_name=f"{label}.{suffix}")
