"""Performance figures per district and service (the CitiStat view), over group roots.

Counts use group roots only (``duplicate_of`` NULL): a pothole reported five times
is one problem, one request to close.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from geo311.errors import InvalidRequest

KPI_COLUMNS = ("volume", "closed", "backlog", "median_days_to_close", "sla_judged",
               "sla_met", "sla_share")
GROUPINGS = ("district", "service")


def kpi_table(frame: pd.DataFrame, by: str, now: datetime) -> pd.DataFrame:
    """Volume, closed, backlog, median days to close and SLA share per ``by``.

    ``frame`` has the columns of ``store.hotspots.kpi_frame``. A request counts for the
    SLA once it is closed (met if closed by its due time) or open past its due time
    (missed); open requests not yet due are not judged. Rows are sorted by volume,
    then name; a last row ``all`` holds the totals.

    Examples
    --------
    >>> kpi_table(store.hotspots.kpi_frame(version_id), "district", now)  # doctest: +SKIP
    """
    if by not in GROUPINGS:
        raise InvalidRequest(f"by was {by!r} but is expected to be in {GROUPINGS}")
    key = "district_id" if by == "district" else "service_name"
    f = frame.copy()
    f[key] = f[key].fillna("(none)").astype(str)
    closed = f["status"].eq("closed") & f["closed"].notna()
    f["closed_n"] = closed.astype(int)
    f["open_n"] = (~f["status"].eq("closed")).astype(int)
    f["days"] = np.where(closed, (f["closed"] - f["requested"]).dt.total_seconds() / 86400,
                         np.nan)
    has_due = f["expected"].notna()
    now_ts = pd.Timestamp(now)
    judged = has_due & (closed | (f["expected"] < now_ts))
    f["judged"] = judged.astype(int)
    f["met"] = (judged & closed & (f["closed"] <= f["expected"])).astype(int)

    def summarise(g: pd.DataFrame) -> dict[str, float]:
        judged_n = int(g["judged"].sum())
        return {
            "volume": len(g), "closed": int(g["closed_n"].sum()),
            "backlog": int(g["open_n"].sum()),
            "median_days_to_close": float(g["days"].median()) if g["closed_n"].any()
            else float("nan"),
            "sla_judged": judged_n, "sla_met": int(g["met"].sum()),
            "sla_share": g["met"].sum() / judged_n if judged_n else float("nan"),
        }

    rows = [{by: name, **summarise(g)} for name, g in f.groupby(key, sort=True)]
    table = pd.DataFrame(rows, columns=[by, *KPI_COLUMNS])
    if len(table):
        table = table.sort_values(["volume", by], ascending=[False, True], kind="stable")
    total = pd.DataFrame([{by: "all", **summarise(f)}], columns=[by, *KPI_COLUMNS])
    return pd.concat([table, total], ignore_index=True)
