"""``prepare_demo`` on a small copy of the shipped data: what it loads and what it says."""

import gzip
import re
import shutil

from geo311.city import load_profile
from geo311.config import PROJECT_ROOT, Settings
from geo311.demo import prepare_demo
from geo311.intake import Context

#: What the default city's demo loads, as its profile lists it.
DEMO_IMPORTS = load_profile().demo.requests
DEMO_REFERENCES = load_profile().demo.references


def _gz_head(src, dest, rows):
    dest.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(src, "rt", encoding="utf-8") as fh, gzip.open(dest, "wt",
                                                                 encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i > rows:
                break
            out.write(line)


def test_prepare_demo_loads_once_and_reports_each_step(store, tmp_path):
    data, layers = tmp_path / "data", tmp_path / "layers"
    layers.mkdir()
    shutil.copy(PROJECT_ROOT / "layers" / "community_areas.toml", layers)
    for rel, _ in DEMO_IMPORTS:
        _gz_head(PROJECT_ROOT / "shapefiles" / rel, data / rel, 150)
    for rel in DEMO_REFERENCES:
        if rel.endswith(".csv.gz"):
            _gz_head(PROJECT_ROOT / "shapefiles" / rel, data / rel, 500)
        else:
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROJECT_ROOT / "shapefiles" / rel, data / rel)
    settings = Settings(database_url=str(store.engine.url.render_as_string(hide_password=False)),
                        layers_path=layers, data_path=data)
    lines: list[str] = []
    contexts = []

    def context():
        contexts.append(Context.from_store(store))
        return contexts[-1]

    prepare_demo(store, settings, context, lines.append)
    flagged = [line for line in lines if line.startswith("  flagged")]
    lines = [line for line in lines if not line.startswith("  flagged")]
    assert all(" date before earliest" in line for line in flagged)  # the legacy file's 2000s
    assert lines[0].startswith("database: ")
    assert lines[1] == "layer community_areas: version 1, active"
    assert lines[2].startswith("service catalogue chicago: ") and " 0 updated" in lines[2]
    points = re.fullmatch(r"geocoding chicago_address_points_food_inspections_business_licenses"
                          r"\.csv\.gz: (\d+) points", lines[3])
    assert points and 400 < int(points.group(1)) <= 500
    assert [line.split(":")[0] for line in lines[4:6]] == [
        f"geocoding {rel.rsplit('/', 1)[1]}" for rel in DEMO_REFERENCES[1:]]
    assert lines[7].startswith("  stored 150, updated 0") and lines[9].startswith("  stored 150")
    assert lines[10].startswith("geocoding: learned ") and lines[-1].startswith("public records: ")
    assert len(contexts) == 2 and all(c.service_area == "community_areas" for c in contexts)
    assert store.requests.count() == 300
    assert store.kb.article("hours-and-contact").version == 1  # the starter knowledge base

    again: list[str] = []
    prepare_demo(store, settings, context, again.append)
    assert again[1] == "layer community_areas: already loaded"
    assert all(line.endswith("already loaded") for line in again[3:6])
    assert again[7].startswith("  stored 0, updated 0, unchanged 150")
    assert store.requests.count() == 300
    assert store.kb.article("hours-and-contact").version == 1  # loaded again: unchanged
