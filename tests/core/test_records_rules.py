"""Retention rules in catalogues, when a kind is due, and records query files (no database)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo311.catalogue import read_catalogue
from geo311.errors import InvalidRequest
from geo311.holds import parse_ids, parse_query, query_toml, read_query_file
from geo311.model import RecordQuery, RetentionRule
from geo311.retention import cutoff, due_kinds, rule_summary
from geo311.store.retention import ClosedRow


def _write(tmp_path, text, name="cat.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_service_overrides_the_catalogue_default_key_by_key(tmp_path):
    path = _write(tmp_path, """
[retention]
contact_years = 2
text_years = 5
media_years = 3
[[services]]
code = "A"
name = "a"
[[services]]
code = "B"
name = "b"
retention = { text_years = 7, media_years = "never" }
""")
    a, b = read_catalogue(path)
    assert a.retention == RetentionRule(2, 5, 3)
    assert b.retention == RetentionRule(contact_years=2, text_years=7, media_years=None)


def test_without_rules_everything_is_kept(tmp_path):
    (s,) = read_catalogue(_write(tmp_path, '[[services]]\ncode = "A"\nname = "a"\n'))
    assert s.retention == RetentionRule() and s.retention.years("text") is None


@pytest.mark.parametrize(("body", "message"), [
    ('[retention]\ncontact_year = 2', "unknown keys ['contact_year']"),
    ('[retention]\ntext_years = -1', "text_years was -1"),
    ('[retention]\ntext_years = "soon"', "text_years was 'soon'"),
    ('[retention]\nmedia_years = true', "media_years was True"),
    ('retention = 3', "[retention] is expected to be a table"),
])
def test_bad_rules_are_named(tmp_path, body, message):
    path = _write(tmp_path, body + '\n[[services]]\ncode = "A"\nname = "a"\n')
    with pytest.raises(InvalidRequest) as err:
        read_catalogue(path)
    assert message in err.value.message and "cat.toml" in err.value.message


def test_shipped_catalogues_carry_rules_for_every_service():
    for name in ("chicago", "boston"):
        services = read_catalogue(name)
        assert all(None not in (s.retention.contact_years, s.retention.text_years,
                                s.retention.media_years) for s in services), name
    chicago = {s.code: s.retention for s in read_catalogue("chicago")}
    assert chicago["SCB"] == RetentionRule(2, 5, 3)
    assert chicago["BBA"].text_years == 7 and chicago["311IOC"].contact_years == 1
    assert rule_summary(chicago)["contact"] == {"1": 1, "2": 72, "5": 2}


def test_cutoff_counts_calendar_years_and_leap_days():
    assert cutoff(datetime(2030, 6, 1, 12, tzinfo=UTC), 2) == datetime(2028, 6, 1, 12, tzinfo=UTC)
    assert cutoff(datetime(2028, 2, 29, tzinfo=UTC), 1) == datetime(2027, 2, 28, tzinfo=UTC)
    half = cutoff(datetime(2030, 1, 1, tzinfo=UTC), 0.5)
    assert timedelta(days=182) < datetime(2030, 1, 1, tzinfo=UTC) - half < timedelta(days=183)


def test_a_kind_is_due_from_the_close_plus_its_years_on():
    closed = datetime(2020, 3, 1, 8, tzinfo=UTC)
    rows = [ClosedRow(1, "A", closed), ClosedRow(2, "B", closed), ClosedRow(3, "Z", closed)]
    rules = {"A": RetentionRule(2, 5, 3), "B": RetentionRule(contact_years=1)}
    day_before = due_kinds(rows, rules, datetime(2022, 3, 1, 7, 59, tzinfo=UTC))
    on_time = due_kinds(rows, rules, datetime(2022, 3, 1, 8, tzinfo=UTC))
    assert [r.id for r in day_before["contact"]] == [2]
    assert [r.id for r in on_time["contact"]] == [1, 2]
    assert on_time["text"] == on_time["media"] == []  # 3 has no rule: never due


def test_query_files_read_their_query_table_and_leave_others_alone(tmp_path):
    path = _write(tmp_path, """
[query]
services = ["SCB", "PHF"]
districts = ["wards_2015_2023:12", "community_areas:8"]
from = 2012-01-01
to = "2012-12-31"
text = "rats"
reporter_email = "A@Example.org"
reporter_phone = "312-555-0100"
status = "closed"
ids = [3, 1]
[package]
anything = "for another task"
""", "q.toml")
    q = read_query_file(path)
    assert q == RecordQuery(ids=(1, 3), services=("SCB", "PHF"),
                            districts=(("wards_2015_2023", "12"), ("community_areas", "8")),
                            start_day=date(2012, 1, 1), end_day=date(2012, 12, 31), text="rats",
                            reporter_email="A@Example.org", reporter_phone="312-555-0100",
                            status="closed")
    assert read_query_file(_write(tmp_path, query_toml(q), "again.toml")) == q


@pytest.mark.parametrize(("body", "message"), [
    ('services = ["A"]', "has no [query] table"),
    ('[query]\nservice = ["A"]', "unknown keys ['service']"),
    ('[query]\ndistricts = ["12"]', "district '12' is expected as LAYER:ID"),
    ('[query]\nfrom = 2012-02-01\nto = 2012-01-01', "to was 2012-01-01 but is expected on or"),
    ('[query]\nfrom = "yesterday"', "from was 'yesterday'"),
    ('[query]\nstatus = "pending"', "status was 'pending'"),
    ('[query]\nids = [1, "2"]', "ids is expected to be a list of request numbers"),
    ('[query\n', "is not TOML"),
])
def test_bad_query_files_are_named(tmp_path, body, message):
    with pytest.raises(InvalidRequest) as err:
        read_query_file(_write(tmp_path, body, "q.toml"))
    assert message in err.value.message


def test_ids_typed_by_hand():
    assert parse_ids(" 12,7  40,12 ") == (7, 12, 40)
    for bad, message in (("1,-2", "'-2' is not one"), ("", "no request ids"),
                         ("1;2", "'1;2' is not one")):
        with pytest.raises(InvalidRequest, match=message):
            parse_ids(bad)


@given(st.builds(
    RecordQuery,
    services=st.lists(st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True), max_size=3).map(tuple),
    text=st.text(max_size=30).map(str.strip),
    reporter_email=st.text(max_size=20).map(str.strip),
    start_day=st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2030, 1, 1))),
    ids=st.lists(st.integers(1, 10**9), max_size=4, unique=True).map(lambda x: tuple(sorted(x))),
))
def test_a_query_written_as_a_file_reads_back_the_same(q):
    import tomllib

    assert parse_query(tomllib.loads(query_toml(q))["query"]) == q


def test_a_bad_batch_size_is_refused_before_the_store_is_read():
    from geo311.retention import run_retention

    with pytest.raises(InvalidRequest, match="batch_size was 0"):
        run_retention(None, batch_size=0)  # type: ignore[arg-type]
