"""A process that used SpatiaLite and read a layer through GDAL exits cleanly."""

import subprocess
import sys

from geo311.config import PROJECT_ROOT

SCRIPT = """
import sys
from geo311.store import open_store
store = open_store(sys.argv[1])
store.schema.init()
import pyogrio
pyogrio.read_dataframe("shapefiles/community_areas")
store.dispose()
print("done")
"""


def test_spatialite_and_gdal_in_one_process_exit_cleanly(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'x.sqlite'}"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "done"
