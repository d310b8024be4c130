"""The in-memory hotspot index against SQL, caught up from the audit log (no web app)."""

from datetime import timedelta

import pandas as pd
import pytest

from geo311.hotspot_index import HotspotIndex
from geo311.hotspots import RequestFilter
from geo311.imports import import_file, read_mapping
from geo311.intake import Context, submit
from geo311.model import NewRequest
from tests.conftest import SAMPLE_2021_CSV, csv_head


@pytest.fixture
def sample(layered_store, tmp_path):
    store = layered_store
    import_file(store, Context.from_store(store), csv_head(SAMPLE_2021_CSV, tmp_path / "s.csv",
                                                            400), read_mapping("chicago-311"))
    return store


def _parents(store):
    frame = pd.concat(list(store.requests.export_frames()), ignore_index=True)
    return frame[frame["duplicate_of"].isna() & frame["long"].notna()]


def _same(index, store, where, resolution=9):
    memory = index.counts(store, store.audit.last_change(), where, resolution)
    sql = store.hotspots.counts(resolution, where).sort_values("cell")
    pd.testing.assert_frame_equal(memory.reset_index(drop=True), sql.reset_index(drop=True))


def test_counts_follow_every_change_without_reloading(sample):
    store = sample
    index = HotspotIndex()
    code = _parents(store)["service_code"].value_counts().index[0]
    filters = [RequestFilter(), RequestFilter(service_codes=(code,)), RequestFilter(status="open")]
    for where in filters:
        _same(index, store, where)
    ctx = Context.from_store(store)
    new = submit(store, ctx, NewRequest(code, -87.6301, 41.8801, description="new"))
    submit(store, ctx, NewRequest(code, -87.6301, 41.8801, description="again"))
    a, b = (int(x) for x in _parents(store)["service_request_id"].iloc[:2])
    store.duplicates.mark(b, a)
    store.requests.set_status(new.id, "closed")
    for where in filters:
        _same(index, store, where)
    assert index.loads == 1
    assert index.marker == store.audit.last_change()


def test_a_bulk_change_or_a_sensitive_service_reloads_everything(sample):
    store = sample
    index = HotspotIndex()
    index.rows(store, store.audit.last_change())
    code = _parents(store)["service_code"].iloc[0]
    store.catalogue.set_sensitive(code, True)
    _same(index, store, RequestFilter())
    assert index.loads == 2
    store.audit.add("bulk_fix", "request", "", {}, "test")  # a change to requests without an id
    index.rows(store, store.audit.last_change())
    assert index.loads == 3
    parts, vocabulary = index.rows(store, store.audit.last_change())
    assert code in vocabulary and sum(len(p) for p in parts) == len(
        store.hotspots.rows())


def test_weekly_counts_equal_sql(sample):
    store = sample
    index = HotspotIndex()
    end = store.requests.latest_requested() + timedelta(seconds=1)
    origin = end - timedelta(weeks=8)
    where = RequestFilter(start=origin, end=end)
    memory = index.weekly(store, store.audit.last_change(), where, 8, origin)
    sql = store.hotspots.weekly(8, where, origin)
    key = ["cell", "week"]
    memory = memory.groupby(key, as_index=False)["reporters"].sum()
    sql = sql.groupby(key, as_index=False)["reporters"].sum()
    assert memory["reporters"].sum() > 0
    pd.testing.assert_frame_equal(memory.sort_values(key).reset_index(drop=True),
                                  sql.sort_values(key).reset_index(drop=True),
                                  check_dtype=False)


def test_a_district_view_is_counted_in_sql(sample):
    store = sample
    index = HotspotIndex()
    version = next(v for v in store.layers.versions(active_only=True)
                   if v.layer == "community_areas")
    where = RequestFilter(layer_version_id=version.id, district_id="32")
    found = index.counts(store, store.audit.last_change(), where, 8)
    assert index.loads == 0  # the rows were never needed
    pd.testing.assert_frame_equal(found, store.hotspots.counts(8, where))
