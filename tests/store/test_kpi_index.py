"""The in-memory KPI rows against the database read, caught up from the audit log."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from geo311 import sla
from geo311.imports import import_file, read_mapping
from geo311.intake import Context, submit
from geo311.kpi_index import KpiIndex
from geo311.model import NewRequest
from tests.conftest import SAMPLE_2021_CSV, csv_head, load_shipped

SORT = ["service_code", "requested", "status", "district_id"]


@pytest.fixture
def sample(layered_store, tmp_path):
    import_file(layered_store, Context.from_store(layered_store),
                csv_head(SAMPLE_2021_CSV, tmp_path / "s.csv", 400), read_mapping("chicago-311"))
    return layered_store


def _same(index, store, version_id, **dates):
    memory = index.frame(store, store.audit.last_change(), version_id, **dates)
    sql = store.hotspots.kpi_frame(version_id, **dates)
    assert len(memory) == len(sql) > 0
    norm = [f.fillna({"district_id": "-"}).sort_values(SORT, ignore_index=True)[
        ["service_code", "service_name", "district_id", "status"]] for f in (memory, sql)]
    pd.testing.assert_frame_equal(*norm, check_dtype=False)
    for col in ("requested", "closed", "expected"):
        a = memory.sort_values(SORT)[col].reset_index(drop=True)
        b = sql.sort_values(SORT)[col].reset_index(drop=True)
        assert ((a - b).abs().dt.total_seconds().fillna(0) < 0.01).all(), col
        assert (a.isna() == b.isna()).all(), col


def test_kpi_rows_follow_every_change_without_reloading(sample):
    store = sample
    ward = store.layers.version("wards_2015_2023").id
    index = KpiIndex()
    _same(index, store, ward)
    _same(index, store, None)
    ctx = Context.from_store(store)
    code = store.hotspots.kpi_frame(None)["service_code"].value_counts().index[0]
    new = submit(store, ctx, NewRequest(code, -87.6301, 41.8801, description="new"))
    submit(store, ctx, NewRequest(code, -87.6301, 41.8801, description="again"))
    store.requests.set_status(new.id, "closed", note="done")
    roots = store.hotspots.kpi_rows()
    a, b = (int(x) for x in roots[roots["parent"]]["id"].iloc[:2])
    store.duplicates.mark(b, a)
    _same(index, store, ward)
    _same(index, store, ward, start=datetime(2021, 1, 2, tzinfo=UTC))
    assert index.loads == 1 and index.marker == store.audit.last_change()


def test_a_service_wide_change_or_a_new_ward_map_reloads(sample):
    store = sample
    index = KpiIndex()
    ward = store.layers.version("wards_2015_2023").id
    _same(index, store, ward)
    code = store.hotspots.kpi_frame(None)["service_code"].value_counts().index[0]
    sla.set_target(store, code, "days", 2)  # due times of every request of the service
    _same(index, store, ward)
    assert index.loads == 2
    load_shipped(store, "wards_2023")
    new_ward = store.layers.version("wards_2023").id
    _same(index, store, new_ward)
    assert index.loads == 3
