"""The demo city: the shipped layers, references, catalogue and requests, loaded once.

``geo311 demo`` calls ``prepare_demo``; running it again loads only what is missing
or changed (layers by checksum, references by source name, requests by source id).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from geo311.catalogue import load_catalogue, read_catalogue
from geo311.config import SHIPPED_ROOT, Settings
from geo311.gazetteer import learn_addresses, load_reference
from geo311.imports import import_file, read_mapping
from geo311.intake import Context
from geo311.knowledge import load_kb
from geo311.layerdefs import read_layer_definitions
from geo311.layers import load_definitions
from geo311.open311_service import refresh_stored_records
from geo311.store import Store

#: The shipped request samples the demo imports (under ``Settings.data_path``), with
#: their mapping.
DEMO_IMPORTS = (
    ("requests/chicago_311_sanitation_code_complaints_2011_2013.csv.gz", "chicago-311-legacy"),
    ("requests/chicago_311_all_types_2021-01-01_to_02_sample.csv.gz", "chicago-311"),
)
#: The shipped geocoding references the demo loads (under ``Settings.data_path``).
DEMO_REFERENCES = (
    "geocoding/chicago_address_points_food_inspections_business_licenses.csv.gz",
    "geocoding/chicago_street_intersections.csv.gz",
    "geocoding/chicago_osm_hermosa_avondale_2012.osm.gz",
)
DEMO_CATALOGUE = "chicago"


def prepare_demo(store: Store, settings: Settings, context: Callable[[], Context],
                 report: Callable[[str], None]) -> None:
    """Load everything the demo serves, saying what was done one line at a time.

    ``context`` gives the intake context as it is now (the layers loaded first change
    it); ``report`` receives each progress line.

    Examples
    --------
    >>> prepare_demo(store, Settings(), lambda: Context.from_store(store), print)
    ... # doctest: +SKIP
    layer community_areas: version 1, active
    """
    store.schema.init()
    report(f"database: {store.engine.url.render_as_string()}")
    definitions = read_layer_definitions(settings.layers_path, SHIPPED_ROOT)
    for d, result in load_definitions(store, definitions, loaded_by="demo",
                                      boundary_tolerance_m=settings.boundary_tolerance_m):
        state_text = ("already loaded" if result is None else
                      f"version {result.version.version}, "
                      f"{'active' if result.activated else 'inactive'}")
        report(f"layer {d.name}: {state_text}")
    added, updated = load_catalogue(store, read_catalogue(DEMO_CATALOGUE),
                                    source=DEMO_CATALOGUE, actor="demo")
    report(f"service catalogue {DEMO_CATALOGUE}: {added} services added, {updated} updated")
    load_kb(store, DEMO_CATALOGUE, actor="demo")  # the starter knowledge base, beside it
    for line in load_demo_references(store, settings.data_path):
        report(line)
    for rel, mapping in DEMO_IMPORTS:
        summary = import_file(store, context(), settings.data_path / rel, read_mapping(mapping))
        report(summary.lines()[0])
        report("  " + summary.lines()[1])
    report(f"geocoding: learned {learn_addresses(store, actor='demo')} address points "
           "from the imported history")
    report(refresh_stored_records(store, settings.zone))


def load_demo_references(store: Store, data_path: Path) -> list[str]:
    """Load the shipped geocoding references not loaded yet; one line per file."""
    loaded = {source for _, source, _ in store.addresses.reference_sources()}
    lines = []
    for rel in DEMO_REFERENCES:
        path = data_path / rel
        if path.name in loaded:
            lines.append(f"geocoding {path.name}: already loaded")
            continue
        kind, n = load_reference(store, path, actor="demo")
        lines.append(f"geocoding {path.name}: {n} {kind}")
    return lines
