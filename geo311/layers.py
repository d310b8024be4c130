"""Boundary layers in the store: load a file as a new version, compare, activate, retire.

Activating a version reassigns stored requests in the same transaction: every
request when the layer is new; for a later version (or a layer that replaces
another), open requests move to it and closed ones keep the district of their
day. Crews follow too: the crews of the layer (or of the layer it replaces) get
the new map's districts, by id or by the largest overlap, so dispatch keeps working.
``diff_version`` is the same computation without the write.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import shapely

from geo311.boundaries.files import checksum
from geo311.boundaries.quality import LayerReport, outside_area, sanity_findings
from geo311.boundaries.reading import read_layer
from geo311.boundaries.succession import match_districts
from geo311.city import active_profile
from geo311.districts import DistrictIndex, DistrictLayer, assign_by_address
from geo311.errors import InvalidRequest
from geo311.layerdefs import ROLES, LayerDefinition
from geo311.model import OPEN, Crew, LayerVersion

if TYPE_CHECKING:
    from geo311.store.audit import AuditLog
    from geo311.store.dispatch import Dispatch
    from geo311.store.layers import Layers
    from geo311.store.requests import Requests

LOGGER = logging.getLogger(__name__)

#: Districts reaching beyond the service area by less than this are drawing noise.
OUTSIDE_TOLERANCE_M2 = 10_000.0

class LayerStore(Protocol):
    """What this module needs of a store."""

    @property
    def layers(self) -> Layers:
        """The store's ``layers``."""

    @property
    def requests(self) -> Requests:
        """The store's ``requests``."""

    @property
    def dispatch(self) -> Dispatch:
        """The store's ``dispatch`` (crews follow their layer)."""

    @property
    def audit(self) -> AuditLog:
        """The store's ``audit``."""


@dataclass(frozen=True)
class LoadResult:
    """A stored layer version, its report, and whether it was put to use."""

    version: LayerVersion
    report: LayerReport
    activated: bool
    reassigned: int = 0


def load_layer(
    store: LayerStore, path: str | Path, *, name: str, title: str = "", role: str = "district",
    description: str = "", id_field: str | None = None, name_field: str | None = None,
    crs: str | None = None, layer: str | None = None, id_rule: str | Sequence[str] | None = None,
    activate: bool = True, force: bool = False, loaded_by: str = "system",
    max_unzipped_bytes: int = 500 * 1024 * 1024, boundary_tolerance_m: float = 15.0,
    service_area: str = "",
) -> LoadResult:
    """Read a boundary file and store it as the next version of layer ``name``.

    A version with rejected features, or with districts no city has (far outside the
    service area, empty, implausibly large or small, drawn twice: ``report.findings``),
    is stored but not activated unless ``force``: its holes would leave requests
    without a district, its impossible districts would take requests. The report says
    which districts reach beyond the active service area (``service_area`` names it
    when configured; default: the active layer whose role is ``service_area``).

    Examples
    --------
    >>> load_layer(store, "shapefiles/wards_2023", name="wards_2023", id_field="ward")
    ... # doctest: +SKIP
    """
    if role not in ROLES:
        raise InvalidRequest(f"role was {role!r} but is expected to be in {list(ROLES)}")
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise InvalidRequest(
            f"layer name was {name!r} but is expected to be letters, digits, '_' or '-'"
        )
    loaded = read_layer(path, id_field=id_field, name_field=name_field, crs=crs, layer=layer,
                        id_rule=id_rule, max_unzipped_bytes=max_unzipped_bytes)
    report = loaded.report
    area_name = service_area_layer(store, service_area)
    area = None
    if area_name is not None and area_name != name and role != "service_area":
        area = shapely.union_all(store.layers.features(area_name).geometry.to_numpy())
        report.service_area = area_name
        report.outside = outside_area(loaded.features, area, OUTSIDE_TOLERANCE_M2)
        report.outside_area_m2 = round(sum(o["outside_m2"] for o in report.outside), 1)
        report.outside_tolerance_m2 = OUTSIDE_TOLERANCE_M2
    report.findings = sanity_findings(loaded.features, area, report.overlaps)
    version = store.layers.add_version(
        name, loaded.features, title=title, role=role, description=description,
        source_file=Path(path).name, source_crs=report.source_crs, checksum=checksum(path),
        id_field=id_field or "", name_field=name_field or "", report=report.to_dict(),
        loaded_by=loaded_by,
    )
    if not activate or not (report.valid or force) or role == "jurisdiction":
        return LoadResult(version, report, activated=False)
    version, moved, _diff = activate_version(store, name, version.version, actor=loaded_by,
                                             boundary_tolerance_m=boundary_tolerance_m,
                                             force=force)
    return LoadResult(version, report, activated=True, reassigned=moved)


def activate_version(
    store: LayerStore, name: str, version: int, *, actor: str = "system",
    boundary_tolerance_m: float = 15.0, replaces: str | None = None, force: bool = False,
) -> tuple[LayerVersion, int, LayerDiff]:
    """Activate a layer version and reassign stored requests.

    Returns the version, how many requests were (re)assigned and the diff applied.

    One transaction: the version becomes active, open requests (and closed ones
    without a district of this layer) get its districts, closed ones keep the
    district of their day, crews of the layer (or of the one it replaces) get the
    new districts (``LayerDiff.crews``), the layer ``replaces`` names (if any) is
    retired, and the switch is audited with its diff.

    Examples
    --------
    >>> activate_version(store, "wards", 2, actor="gis")  # doctest: +SKIP
    """
    chosen = store.layers.version(name, version)
    if chosen.role == "jurisdiction":
        raise InvalidRequest(f"{name} is a jurisdiction layer (the city's neighbours): it gives "
                             "requests no district and is never activated; referrals use its "
                             "newest version")
    findings: list[dict[str, Any]] = list(chosen.report.get("findings") or [])  # type: ignore[call-overload]
    if findings and not force:
        listed = "; ".join(f"{f['district_id']}: {f['kind']} ({f['detail']})"
                           for f in findings[:5])
        districts = len({f["district_id"] for f in findings})
        raise InvalidRequest(f"{name} version {version} has {districts} districts no "
                             f"city has ({listed}); fix the file, or activate with force")
    plan = _plan(store, name, version, replaces, boundary_tolerance_m)
    version_row = store.layers.activate(
        name, version, actor=actor,
        districts={"ids": plan.ids, "district_id": plan.district_id,
                   "boundary_case": plan.boundary_case},
        retire=[replaces] if replaces else [],
        detail={"replaces": replaces, **plan.diff.summary()},
        crews=[{"id": m["crew_id"], "layer": m["layer_to"], "districts": m["districts_to"],
                "active": m["active"], "detail": m} for m in plan.diff.crews],
    )
    LOGGER.info("activated %s version %s; %s requests assigned, %s open ones changed district, "
                "%s crews follow", name, version, len(plan.ids), plan.diff.open_changed,
                len(plan.diff.crews))
    return version_row, len(plan.ids), plan.diff


@dataclass(frozen=True)
class LayerDiff:
    """What activating a version would do to stored requests (a dry run).

    ``transitions`` lists, for open requests that would change district, each
    ``(old, new, count)``, largest first; None is "no district". Closed requests keep
    the district of their day: ``closed_kept_differing`` counts those the new map
    would have put elsewhere, ``closed_assigned`` those that had none of this layer
    and get one. ``crews`` lists each crew that follows the new map: its layer and
    home districts before and after, and for each old district the ``successors``
    (same id, or the new district with the largest overlap, and the share it covers).
    """

    layer: str
    version: int
    baseline_layer: str | None
    baseline_version: int | None
    open_requests: int
    open_changed: int
    transitions: list[tuple[str | None, str | None, int]]
    closed_requests: int
    closed_kept: int
    closed_kept_differing: int
    closed_assigned: int
    crews: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The counts and the crews' new districts, without the transition list."""
        data = asdict(self)
        data.pop("transitions")
        return data

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values, transitions as ``{"from", "to", "requests"}``."""
        return {**self.summary(), "transitions": [
            {"from": old, "to": new, "requests": n} for old, new, n in self.transitions]}

    def lines(self) -> list[str]:
        """The diff as text for the command line."""
        base = (f"{self.baseline_layer} v{self.baseline_version}"
                if self.baseline_layer else "no active version")
        out = [
            f"{self.layer} v{self.version} against {base}:",
            f"  open requests: {self.open_requests}, would change district: {self.open_changed}",
        ]
        out += [f"    {old or '(none)'} -> {new or '(none)'}: {n}"
                for old, new, n in self.transitions]
        out.append(f"  closed requests: {self.closed_requests}, keep the district of their day: "
                   f"{self.closed_kept} ({self.closed_kept_differing} of them lie in another "
                   f"district on the new map); get a first district: {self.closed_assigned}")
        for m in self.crews:
            moved = ", ".join(f"{s['old']}->{s['new'] or '(none)'}"
                              + ("" if s["how"] == "same id" and s["share"] >= 0.5
                                 else f" ({s['how']}, {s['share']:.0%} of the old district)")
                              for s in m["successors"])
            out.append(f"  crew {m['crew']}: {m['layer_from']} -> {m['layer_to']}; districts "
                       f"{','.join(m['districts_to']) or 'all'}" + (f" [{moved}]" if moved else "")
                       + ("" if m["active"] else "; no district left: crew made inactive"))
        return out


@dataclass(frozen=True)
class _Plan:
    """The diff and the requests activation (re)assigns, with their new districts."""

    diff: LayerDiff
    ids: np.ndarray
    district_id: np.ndarray
    boundary_case: np.ndarray


def diff_version(
    store: LayerStore, name: str, version: int, *, replaces: str | None = None,
    boundary_tolerance_m: float = 15.0,
) -> LayerDiff:
    """Compare a version with the active one (of ``name``, or of the layer it ``replaces``).

    Examples
    --------
    >>> diff_version(store, "wards", 2).open_changed  # doctest: +SKIP
    812
    """
    return _plan(store, name, version, replaces, boundary_tolerance_m).diff


def _plan(
    store: LayerStore, name: str, version: int, replaces: str | None, boundary_tolerance_m: float
) -> _Plan:
    target = store.layers.version(name, version)
    related = [v for v in store.layers.versions(name) if v.id != target.id]
    baseline = next((v for v in store.layers.versions(name)
                     if v.status == "active" and v.id != target.id), None)
    if replaces is not None:
        if replaces == name:
            raise InvalidRequest(f"layer {name!r} cannot replace itself; leave out replaces")
        baseline = store.layers.version(replaces)
        if baseline.status != "active":
            raise InvalidRequest(
                f"layer {replaces!r} has no active version to replace (its newest is "
                f"v{baseline.version}, {baseline.status})")
        related += store.layers.versions(replaces)
    features = store.layers.features(name, version)
    index = DistrictIndex(
        [DistrictLayer(name, target.id, list(features["district_id"]),
                       list(features.geometry.values))],
        boundary_tolerance_m=boundary_tolerance_m,
    )
    points = store.requests.points()
    assigned = assign_by_address(index, points["lon"].to_numpy(dtype=float),
                                 points["lat"].to_numpy(dtype=float),
                                 points["address"].tolist(), grid=active_profile().grid)[name]
    held = store.layers.request_districts_of([v.id for v in related])
    # the district a request shows now: its row from the newest related version
    current = (held.sort_values(["request_id", "layer_version_id"])
               .drop_duplicates("request_id", keep="last").set_index("request_id")["district_id"])
    ids = points["id"].to_numpy(dtype=np.int64)
    covered = np.isin(ids, current.index.to_numpy(dtype=np.int64))
    # plain object arrays of str or None: pandas would turn None into NaN
    new_ids = np.array([_text_or_none(v) for v in assigned.district_id],
                       dtype=object)
    held_ids = dict(zip(current.index, current, strict=True))
    old_ids = np.array([_text_or_none(held_ids.get(i)) for i in ids], dtype=object)
    is_open = (points["status"] == OPEN).to_numpy()
    differs = old_ids != new_ids
    moved = is_open & differs
    counts: dict[tuple[str | None, str | None], int] = {}
    for pair in zip(old_ids[moved], new_ids[moved], strict=True):
        counts[pair] = counts.get(pair, 0) + 1
    transitions = sorted(
        ((old, new, n) for (old, new), n in counts.items()),
        key=lambda item: (-item[2], _natural_key(item[0] or ""), _natural_key(item[1] or "")),
    )
    closed = ~is_open
    kept = closed & covered
    diff = LayerDiff(
        layer=name, version=version,
        baseline_layer=baseline.layer if baseline else None,
        baseline_version=baseline.version if baseline else None,
        open_requests=int(is_open.sum()), open_changed=int(moved.sum()), transitions=transitions,
        closed_requests=int(closed.sum()), closed_kept=int(kept.sum()),
        closed_kept_differing=int((kept & differs).sum()),
        closed_assigned=int((closed & ~covered).sum()),
        crews=crew_moves(store, name, version, replaces=replaces, features=features),
    )
    reassign = is_open | ~covered
    return _Plan(diff=diff, ids=ids[reassign], district_id=new_ids[reassign],
                 boundary_case=np.asarray(assigned.boundary_case, dtype=bool)[reassign])


def crew_moves(
    store: LayerStore, name: str, version: int, *, replaces: str | None = None,
    features: Any = None,
) -> list[dict[str, Any]]:
    """How crews follow when this version comes into force (a dry run).

    Crews on ``replaces`` move to layer ``name``; crews on ``name`` itself follow
    the new version when another version is active. A home district keeps its id
    when the new map has it, else goes to the new district with the largest overlap
    (``match_districts``). A crew left with no district is made inactive rather than
    let loose on every district.
    """
    target = store.layers.version(name, version)
    new = features if features is not None else store.layers.features(name, version)
    sources: list[tuple[str, LayerVersion]] = []
    if replaces is not None:
        sources.append((replaces, store.layers.version(replaces)))
    current = next((v for v in store.layers.versions(name)
                    if v.status == "active" and v.id != target.id), None)
    if current is not None:
        sources.append((name, current))
    crews = store.dispatch.crews(active_only=False)
    out: list[dict[str, Any]] = []
    for layer, old_version in sources:
        mine = [c for c in crews if c.layer == layer]
        if not mine:
            continue
        wanted = sorted({d for c in mine for d in c.districts}, key=_natural_key)
        successors = match_districts(store.layers.features(layer, old_version.version), new,
                                     wanted)
        out += [_crew_move(c, name, successors) for c in mine]
    return out


def _crew_move(crew: Crew, layer: str, successors: dict[str, Any]) -> dict[str, Any]:
    found = [successors[d] for d in crew.districts]
    districts = list(dict.fromkeys(s.new for s in found if s.new is not None))
    return {
        "crew_id": crew.id, "crew": crew.name, "layer_from": crew.layer, "layer_to": layer,
        "districts_from": list(crew.districts), "districts_to": districts,
        "active": crew.active and (bool(districts) or not crew.districts),
        "successors": [s.to_dict() for s in found],
    }


def _text_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort ward "2" before ward "10"."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                 for t in re.findall(r"\d+|\D+", text))


def service_area_layer(store: LayerStore, configured: str = "") -> str | None:
    """The layer that is the service area now, chosen as intake chooses it.

    ``configured`` (GEO311_SERVICE_AREA_LAYER) if active, else the active layer whose
    role is ``service_area``, else the first active layer; None without active layers.
    """
    versions = store.layers.versions(active_only=True)
    names = [v.layer for v in versions]
    if configured and configured in names:
        return configured
    roles = [v.layer for v in versions if v.role == "service_area"]
    return next(iter(roles or names), None)


def retire_layer(
    store: LayerStore, name: str, *, actor: str = "system", service_area: str | None = None,
    force: bool = False, configured_service_area: str = "",
) -> list[int]:
    """Take a layer out of use; requests keep the districts they got from it.

    The service-area layer is only retired when ``service_area`` names the active
    layer that takes over, or with ``force``. Returns the versions retired; audited.

    Examples
    --------
    >>> retire_layer(store, "police_districts_2012", actor="gis")  # doctest: +SKIP
    [1]
    """
    active = [v.layer for v in store.layers.versions(active_only=True)]
    store.layers.version(name)  # NotFound for an unknown layer
    if name not in active:
        raise InvalidRequest(f"layer {name!r} has no active version; nothing to retire")
    if service_area is not None and (service_area == name or service_area not in active):
        raise InvalidRequest(
            f"service area was {service_area!r} but is expected to be another active layer: "
            f"{[n for n in active if n != name]}")
    if configured_service_area == name:
        raise InvalidRequest(
            f"GEO311_SERVICE_AREA_LAYER names {name!r}; change that setting before retiring it")
    staffed = [c.name for c in store.dispatch.crews() if c.layer == name]
    if staffed:
        raise InvalidRequest(
            f"crews {staffed} work on layer {name!r}; activate the layer that takes over with "
            f"replaces={name!r} (--replaces {name}) so they follow it, or edit their layer first")
    if service_area_layer(store, configured_service_area) == name and service_area is None \
            and not force:
        raise InvalidRequest(
            f"layer {name!r} is the service area (reports outside it are refused); name the "
            "active layer that takes over with --service-area LAYER, or use --force (the first "
            "active layer then stands in)")
    return store.layers.retire(name, actor=actor, service_area=service_area)


def load_definitions(
    store: LayerStore, definitions: list[LayerDefinition], *, loaded_by: str = "system",
    boundary_tolerance_m: float = 15.0,
) -> list[tuple[LayerDefinition, LoadResult | None]]:
    """Load the shipped layers; a layer whose newest version has the same checksum is skipped."""
    done: list[tuple[LayerDefinition, LoadResult | None]] = []
    for d in definitions:
        existing = store.layers.versions(d.name)
        if existing and existing[-1].checksum == checksum(d.source):
            done.append((d, None))
            continue
        done.append((d, load_layer(
            store, d.source, name=d.name, title=d.title, role=d.role,
            description=d.description, id_field=d.id_field, name_field=d.name_field,
            crs=d.crs, layer=d.layer, id_rule=list(d.id_rule) or None, activate=d.active,
            loaded_by=loaded_by,
            boundary_tolerance_m=boundary_tolerance_m,
        )))
    return done


def describe_layer(store: LayerStore, name: str, version: int | None = None) -> dict[str, Any]:
    """The validation report of a version with its state: what ``layers show`` prints.

    Counts, extent, source CRS, problems (repairs and rejections), overlaps and gaps,
    districts beyond the service area, and how many stored requests it holds.
    """
    v = store.layers.version(name, version)
    report = v.report
    counts = store.layers.district_counts(v.id)
    problems = list(report.get("problems", []))  # type: ignore[call-overload]
    return {
        "name": v.layer, "title": v.title, "role": v.role, "version": v.version,
        "status": v.status, "source_file": v.source_file, "source_crs": v.source_crs,
        "checksum": v.checksum, "loaded_by": v.loaded_by, "loaded_at": v.loaded_at.isoformat(),
        "feature_count": v.feature_count, "extent": report.get("bounds"),
        "valid": report.get("valid"),
        "repaired": sum(p["action"] == "repaired" for p in problems),
        "rejected": sum(p["action"] == "rejected" for p in problems),
        "problems": problems,
        "overlap_area_m2": report.get("overlap_area_m2"),
        "overlap_count": report.get("overlap_count"),
        "gap_area_m2": report.get("gap_area_m2"), "gap_count": report.get("gap_count"),
        "service_area": report.get("service_area"),
        "outside_count": len(report.get("outside", [])),  # type: ignore[arg-type]
        "outside_area_m2": report.get("outside_area_m2", 0.0),
        "outside_tolerance_m2": report.get("outside_tolerance_m2", 0.0),
        "requests_assigned": sum(c for d, c in counts.items() if d is not None),
        "requests_outside": counts.get(None, 0),
        "versions": [(x.version, x.status) for x in store.layers.versions(name)],
        "overlaps": report.get("overlaps", []), "gaps": report.get("gaps", []),
        "outside": report.get("outside", []),
        "findings": report.get("findings", []),
        "crews": _crews_of_version(store, v),
    }


def _crews_of_version(store: LayerStore, v: LayerVersion) -> list[dict[str, Any]]:
    """How crews followed this version (from the audit), or would follow (dry run)."""
    if v.status == "inactive" and not any(
            e["detail"].get("version") == v.version
            for e in store.audit.entries("layer", v.layer) if e["action"] == "layer_activated"):
        return crew_moves(store, v.layer, v.version)
    return [e["detail"] for e in store.audit.entries("crew")
            if e["action"] == "crew_remapped" and e["detail"].get("layer_to") == v.layer
            and e["detail"].get("version") == v.version]
