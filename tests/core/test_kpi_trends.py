"""KPI trends, previous periods and spreadsheet-safe cells, against plain Python counts."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo311.errors import InvalidRequest
from geo311.kpi import compare_tables, defuse_formula, kpi_table, previous_period, trend_table
from tests.conftest import examples

ZONE = ZoneInfo("America/New_York")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _frame(rows):
    f = pd.DataFrame(rows, columns=["service_code", "service_name", "district_id", "status",
                                    "requested", "closed", "expected"])
    for col in ("requested", "closed", "expected"):
        f[col] = pd.to_datetime(f[col], utc=True)
    return f


def _week(t: datetime) -> date:
    d = t.astimezone(ZONE).date()
    return d - timedelta(days=d.weekday())


def _month(t: datetime) -> date:
    return t.astimezone(ZONE).date().replace(day=1)


request_rows = st.lists(st.tuples(
    st.integers(0, 24 * 200),             # hours after T0 the request came in
    st.one_of(st.none(), st.integers(0, 24 * 40)),  # hours to close, or still open
    st.one_of(st.none(), st.integers(1, 24 * 10)),  # hours to its due time, or no SLA
), min_size=1, max_size=60)


@settings(max_examples=examples(200), deadline=None)
@given(request_rows, st.sampled_from(["week", "month"]))
def test_trend_counts_agree_with_a_plain_count(rows, period):
    data = []
    for req_h, close_h, due_h in rows:
        requested = T0 + timedelta(hours=req_h)
        closed = requested + timedelta(hours=close_h) if close_h is not None else None
        due = requested + timedelta(hours=due_h) if due_h is not None else None
        data.append(("A", "A", "1", "closed" if closed else "open", requested, closed, due))
    out = trend_table(_frame(data), period, ZONE).set_index("period")
    bucket = _week if period == "week" else _month
    received = Counter(bucket(r[4]) for r in data)
    closed = Counter(bucket(r[5]) for r in data if r[5] is not None)
    judged = Counter(bucket(r[5]) for r in data if r[5] is not None and r[6] is not None)
    met = Counter(bucket(r[5]) for r in data if r[5] is not None and r[6] is not None
                  and r[5] <= r[6])
    assert out["received"].sum() == len(data)
    for day, n in received.items():
        assert out.loc[day, "received"] == n
    for day, n in closed.items():
        assert out.loc[day, "closed"] == n
        assert out.loc[day, "sla_judged"] == judged[day] and out.loc[day, "sla_met"] == met[day]
    # every period between the first and the last is there, empty ones as zeros
    days = list(out.index)
    assert days == sorted(days) and len(set(days)) == len(days)
    if period == "week":
        assert all((b - a).days == 7 for a, b in zip(days, days[1:], strict=False))


def test_weeks_start_on_local_monday():
    # 2024-01-08 03:00 UTC is Sunday 22:00 in New York: it belongs to the week of 1 January.
    f = _frame([("A", "A", "1", "open", datetime(2024, 1, 8, 3, tzinfo=UTC), None, None)])
    assert list(trend_table(f, "week", ZONE)["period"]) == [date(2024, 1, 1)]
    with pytest.raises(InvalidRequest, match="period"):
        trend_table(f, "fortnight", ZONE)


def test_previous_period_has_the_same_length_just_before():
    assert previous_period(date(2013, 6, 1), date(2013, 7, 1)) == (date(2013, 5, 2),
                                                                   date(2013, 6, 1))
    with pytest.raises(InvalidRequest):
        previous_period(date(2013, 6, 1), date(2013, 6, 1))


def test_compare_tables_puts_the_earlier_volume_beside_each_row():
    now = T0 + timedelta(days=400)
    row = ("A", "Alley", "7", "open", T0, None, None)
    current = kpi_table(_frame([row] * 3), "district", now)
    earlier = kpi_table(_frame([row] * 2), "district", now)
    out = compare_tables(current, earlier, "district").set_index("district")
    assert out.loc["7", "volume_before"] == 2 and out.loc["7", "volume_change"] == 0.5
    new = compare_tables(current, earlier.iloc[0:0], "district").set_index("district")
    assert new.loc["7", "volume_before"] == 0 and np.isnan(new.loc["7", "volume_change"])


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\tx", "\r=1"])
def test_cells_a_spreadsheet_would_run_become_text(cell):
    assert defuse_formula(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Alley light out", "42", 42, None, "O'Hare"])
def test_plain_cells_stay_as_they_are(cell):
    assert defuse_formula(cell) == cell
