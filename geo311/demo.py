"""A city's demo: the layers, references, catalogue and requests its profile lists, loaded once.

``geo311 demo [--city NAME]`` calls ``prepare_demo`` with the profile's ``[demo]``
section; running it again loads only what is missing or changed (layers by checksum,
references by source name, requests by source id).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from geo311.catalogue import CATALOGUES, load_catalogue, read_catalogue
from geo311.city import SHIPPED, CityProfile, DemoFiles
from geo311.config import SHIPPED_ROOT, Settings
from geo311.errors import InvalidRequest
from geo311.gazetteer import learn_references, load_reference
from geo311.import_mapping import read_mapping
from geo311.imports import import_file
from geo311.intake import Context
from geo311.knowledge import load_kb
from geo311.layerdefs import read_layer_definitions
from geo311.layers import load_definitions
from geo311.open311_service import refresh_stored_records
from geo311.referral import load_routing
from geo311.store import Store


def demo_files(profile: CityProfile) -> DemoFiles:
    """The profile's ``[demo]`` section; an error naming the profile when it has none."""
    if profile.demo is None:
        raise InvalidRequest(f"city profile {profile.path} has no [demo] section listing the "
                             "files its demo loads")
    return profile.demo


def prepare_demo(store: Store, settings: Settings, context: Callable[[], Context],
                 report: Callable[[str], None], profile: CityProfile | None = None,
                 *, records: bool = True) -> None:
    """Load everything the demo serves, saying what was done one line at a time.

    ``profile`` (default: the settings' city) lists the files in its ``[demo]``
    section; ``context`` gives the intake context as it is now (the layers loaded first
    change it); ``report`` receives each progress line. ``records=False`` leaves the
    stored Open311 records to the caller (a reader rebuilds a stale one anyway).

    Examples
    --------
    >>> prepare_demo(store, Settings(), lambda: Context.from_store(store), print)
    ... # doctest: +SKIP
    layer community_areas: version 1, active
    """
    profile = profile or settings.profile
    demo = demo_files(profile)
    store.schema.init()
    report(f"database: {store.engine.url.render_as_string()}")
    if demo.layers:
        layers_path, root = ((settings.layers_path, SHIPPED_ROOT) if demo.layers == SHIPPED
                             else (Path(demo.layers), Path(demo.layers).parent))
        definitions = read_layer_definitions(layers_path, root)
        for d, result in load_definitions(store, definitions, loaded_by="demo",
                                          boundary_tolerance_m=settings.boundary_tolerance_m):
            state_text = ("already loaded" if result is None else
                          f"version {result.version.version}, "
                          f"{'active' if result.activated else 'inactive'}")
            report(f"layer {d.name}: {state_text}")
    catalogue = demo.catalogue or profile.catalogue
    if catalogue:
        added, updated = load_catalogue(store, read_catalogue(catalogue),
                                        source=catalogue, actor="demo")
        name = Path(catalogue).stem if "/" in catalogue else catalogue
        report(f"service catalogue {name}: {added} services added, {updated} updated")
        if "/" not in catalogue and (CATALOGUES / f"{catalogue}-kb").is_dir():
            load_kb(store, catalogue, actor="demo")  # the starter knowledge base beside it
    data_path = settings.data_path if demo.data == SHIPPED else Path(demo.data)
    for line in load_demo_references(store, data_path, demo.references):
        report(line)
    for rel, mapping in demo.requests:
        summary = import_file(store, context(), data_path / rel, read_mapping(mapping))
        report(summary.lines()[0])
        report("  " + summary.lines()[1])
        for line in summary.lines():  # implausible dates, stored and marked
            if line.startswith("flagged"):
                report("  " + line)
    if demo.learn:
        points, crossings = learn_references(store, actor="demo")
        report(f"geocoding: learned {points} address points and {crossings} intersections "
               "from the imported history")
    if records:
        report(refresh_stored_records(store, settings.zone,
                                      load_routing(settings.routing_path)))


def load_demo_references(store: Store, data_path: Path, references: tuple[str, ...]
                         ) -> list[str]:
    """Load the listed geocoding references not loaded yet; one line per file."""
    loaded = {source for _, source, _ in store.addresses.reference_sources()}
    lines = []
    for rel in references:
        path = data_path / rel
        if path.name in loaded:
            lines.append(f"geocoding {path.name}: already loaded")
            continue
        kind, n = load_reference(store, path, actor="demo")
        lines.append(f"geocoding {path.name}: {n} {kind}")
    return lines
