"""Every request's KPI columns in memory, caught up from the audit log.

A KPI view at a million requests then filters and groups in pandas without reading
the table again: after a change only the requests the new audit entries name (and
any updated since the last catch-up) are re-read, as the hotspot index does.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from geo311.hotspot_index import named_requests
from geo311.store import Store

#: Audit entities whose changes touch many requests at once: they reload everything.
WIDE_ENTITIES = ("service", "layer", "schema")


class KpiIndex:
    """Requests' service, status, times and group role, with districts per layer version.

    Exact at the audit entry it was last caught up to (``marker``). ``loads`` counts
    full loads, so a test can tell a catch-up from a reload.

    Examples
    --------
    >>> index = KpiIndex()
    >>> index.frame(store, store.audit.last_change(), version_id)  # doctest: +SKIP
    """

    MARGIN_S = 30.0
    MAX_ENTRIES = 5000

    def __init__(self) -> None:
        self.rows = pd.DataFrame()
        self.districts: dict[int, pd.Series] = {}
        self.marker = -1
        self.synced = 0.0
        self.loads = 0
        self._lock = threading.Lock()

    def frame(self, store: Store, marker: int, layer_version_id: int | None, *,
              start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """What ``store.hotspots.kpi_frame`` gives, from memory once caught up."""
        with self._lock:
            self._catch_up(store, marker)
            rows = self.rows
            districts = self._districts(store, layer_version_id)
        keep = rows["parent"].to_numpy(copy=True)
        if start is not None:
            keep = keep & (rows["requested"] >= pd.Timestamp(start)).to_numpy()
        if end is not None:
            keep = keep & (rows["requested"] < pd.Timestamp(end)).to_numpy()
        out = rows[keep]
        names = store.catalogue.service_names()
        frame = out[["service_code", "status", "requested", "closed", "expected"]].reset_index(
            drop=True)
        frame.insert(1, "service_name", frame["service_code"].map(names))
        frame.insert(2, "district_id", None if districts is None else
                     districts.reindex(out.index).to_numpy())
        return frame

    def _catch_up(self, store: Store, marker: int) -> None:
        if marker == self.marker and not self.rows.empty:
            return
        started = time.time()
        entries = [] if self.rows.empty else store.audit.since(self.marker,
                                                               self.MAX_ENTRIES + 1)
        if self.rows.empty or len(entries) > self.MAX_ENTRIES or any(
                (e["entity"] == "request" and not e["entity_id"])
                or e["entity"] in WIDE_ENTITIES for e in entries):
            self.rows = store.hotspots.kpi_rows().set_index("id")
            self.districts = {}
            self.loads += 1
        else:
            since = datetime.fromtimestamp(self.synced - self.MARGIN_S, UTC)
            changed = store.hotspots.kpi_rows(since=since,
                                              ids=sorted(named_requests(entries)))
            if len(changed):
                changed = changed.set_index("id")
                old = self.rows.drop(changed.index, errors="ignore")
                self.rows = pd.concat([old, changed]).sort_index()
                for vid in list(self.districts):
                    fresh = store.layers.districts_of_requests(vid, changed.index.tolist())
                    self.districts[vid] = pd.concat([
                        self.districts[vid].drop(changed.index, errors="ignore"), fresh])
        self.marker, self.synced = marker, started

    def _districts(self, store: Store, layer_version_id: int | None) -> pd.Series | None:
        if layer_version_id is None:
            return None
        if layer_version_id not in self.districts:
            self.districts[layer_version_id] = store.layers.districts_of_requests(
                layer_version_id)
        return self.districts[layer_version_id]


def kpi_frame(store: Store, index: KpiIndex | None, layer_version_id: int | None,
              **dates: Any) -> pd.DataFrame:
    """The KPI frame from ``index`` when there is one, else straight from the store."""
    if index is None:
        return store.hotspots.kpi_frame(layer_version_id, **dates)
    return index.frame(store, store.audit.last_change(), layer_version_id, **dates)
