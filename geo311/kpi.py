"""Performance figures per district and service (the CitiStat view), over group roots.

Counts use group roots only (``duplicate_of`` NULL): a pothole reported five times
is one problem, one request to close.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from geo311.errors import InvalidRequest

KPI_COLUMNS = ("volume", "closed", "backlog", "median_days_to_close", "sla_judged",
               "sla_met", "sla_share")
GROUPINGS = ("district", "service")
PERIODS = ("week", "month")
#: What satisfaction is shown by, and the columns of each of its rows.
SATISFACTION_BY = ("district", "service", "agency")
SATISFACTION_COLUMNS = ("by", "key", "answers", "mean_rating", "satisfied_share",
                        "dissatisfied_share")
TREND_COLUMNS = ("period", "received", "closed", "sla_judged", "sla_met", "sla_share")
#: Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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

    grouped = f.groupby(key, sort=True).agg(
        volume=("status", "size"), closed=("closed_n", "sum"), backlog=("open_n", "sum"),
        median_days_to_close=("days", "median"), sla_judged=("judged", "sum"),
        sla_met=("met", "sum"))
    table = _with_share(grouped.reset_index().rename(columns={key: by}), by)
    if len(table):
        table = table.sort_values(["volume", by], ascending=[False, True], kind="stable")
    total = _with_share(pd.DataFrame([{
        by: "all", "volume": len(f), "closed": int(f["closed_n"].sum()),
        "backlog": int(f["open_n"].sum()), "median_days_to_close": f["days"].median(),
        "sla_judged": int(f["judged"].sum()), "sla_met": int(f["met"].sum())}]), by)
    return pd.concat([table, total], ignore_index=True)


def satisfaction_table(answers: pd.DataFrame) -> pd.DataFrame:
    """Survey answers, mean rating and shares satisfied (4-5) and dissatisfied (1-2).

    One block of rows per ``SATISFACTION_BY`` (``by`` names it, ``key`` is the district,
    service name or agency), each sorted by answers then key, then a row ``all``.
    ``answers`` has ``rating, service_name, agency, district`` (``store.surveys.frame``).

    Examples
    --------
    >>> satisfaction_table(store.surveys.frame(version_id))  # doctest: +SKIP
    """
    a = answers.assign(satisfied=answers["rating"].ge(4).astype(float),
                       dissatisfied=answers["rating"].le(2).astype(float),
                       rating=answers["rating"].astype(float))
    blocks = []
    for by, column in zip(SATISFACTION_BY, ("district", "service_name", "agency"),
                          strict=True):
        grouped = a.groupby(a[column].astype(str), sort=True).agg(
            answers=("rating", "size"), mean_rating=("rating", "mean"),
            satisfied_share=("satisfied", "mean"), dissatisfied_share=("dissatisfied", "mean"))
        block = grouped.rename_axis("key").reset_index().assign(by=by)
        blocks.append(block.sort_values(["answers", "key"], ascending=[False, True],
                                        kind="stable"))
    n = len(a)
    blocks.append(pd.DataFrame([{
        "by": "all", "key": "all", "answers": n,
        "mean_rating": a["rating"].mean() if n else np.nan,
        "satisfied_share": a["satisfied"].mean() if n else np.nan,
        "dissatisfied_share": a["dissatisfied"].mean() if n else np.nan}]))
    table = pd.concat([b for b in blocks if len(b)], ignore_index=True)
    table["answers"] = table["answers"].astype(int)
    return table[list(SATISFACTION_COLUMNS)]


def _with_share(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """The SLA share column (met / judged; NaN where nothing was judged), columns in order."""
    judged = table["sla_judged"].astype(float)
    table["sla_share"] = np.where(judged > 0, table["sla_met"] / judged.where(judged > 0, 1),
                                  np.nan)
    for col in ("volume", "closed", "backlog", "sla_judged", "sla_met"):
        table[col] = table[col].astype(int)
    table["median_days_to_close"] = table["median_days_to_close"].astype(float)
    return table[[by, *KPI_COLUMNS]]


def trend_table(frame: pd.DataFrame, period: str, zone: ZoneInfo) -> pd.DataFrame:
    """Requests received and closed per week (from Monday) or month, in local time.

    A period's SLA share judges the requests closed in it (met when closed by their
    due time), so a trend shows whether the work keeps up as it happens.
    """
    if period not in PERIODS:
        raise InvalidRequest(f"period was {period!r} but is expected to be in {PERIODS}")

    def start_of(times: pd.Series) -> pd.Series:
        local = times.dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
        if period == "week":
            return local - pd.to_timedelta(local.dt.day_of_week, unit="D")
        return local.dt.to_period("M").dt.start_time

    received = start_of(frame["requested"]).value_counts()
    closed_mask = frame["status"].eq("closed") & frame["closed"].notna()
    done = frame[closed_mask]
    closed_at = start_of(done["closed"])
    closed = closed_at.value_counts()
    judged_rows = done["expected"].notna()
    judged = closed_at[judged_rows].value_counts()
    met = closed_at[judged_rows & (done["closed"] <= done["expected"])].value_counts()
    index = received.index.union(closed.index).sort_values()
    if len(index):  # every period between the first and the last, empty ones included
        step = "W-MON" if period == "week" else "MS"
        index = pd.date_range(index.min(), index.max(), freq=step)
    out = pd.DataFrame({"period": [d.date() for d in index]})
    for name, counts in (("received", received), ("closed", closed), ("sla_judged", judged),
                         ("sla_met", met)):
        out[name] = counts.reindex(index, fill_value=0).to_numpy().astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["sla_share"] = np.where(out["sla_judged"] > 0,
                                    out["sla_met"] / out["sla_judged"].clip(lower=1), np.nan)
    return out[list(TREND_COLUMNS)]


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length just before ``[start, end)``, to compare with."""
    if end <= start:
        raise InvalidRequest(f"end was {end} but is expected after start {start}")
    return start - (end - start), start


def compare_tables(current: pd.DataFrame, previous: pd.DataFrame, by: str) -> pd.DataFrame:
    """``current`` with the previous period's volume and SLA share beside each row."""
    before = previous[[by, "volume", "sla_share"]].rename(
        columns={"volume": "volume_before", "sla_share": "sla_share_before"})
    out = current.merge(before, on=by, how="left")
    out["volume_before"] = out["volume_before"].fillna(0).astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["volume_change"] = np.where(
            out["volume_before"] > 0,
            (out["volume"] - out["volume_before"]) / out["volume_before"].clip(lower=1), np.nan)
    return out


def defuse_formula(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, made plain text (a leading ')."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def local_day_range(start: date | None, end: date | None,
                    zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """Local midnights of ``start`` and of the day after ``end`` (an inclusive end date)."""
    def midnight(d: date | None) -> datetime | None:
        return None if d is None else datetime.combine(d, datetime.min.time(), tzinfo=zone)
    return midnight(start), midnight(end + timedelta(days=1) if end else None)
