"""Retention on both backends: what each rule removes, holds, dry runs, re-runs, counting."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from geo311.holds import place_hold
from geo311.hotspots import RequestFilter
from geo311.intake import regroup_duplicates
from geo311.kpi import kpi_table
from geo311.model import RetentionRule
from geo311.retention import cutoff, run_retention
from geo311.store.retention import REDACTED_TEXT
from tests.prepared import starts_from
from tests.records_seed import PHONE, SERVICES, TYPED, personal_strings, snapshot

starts_from("records", "records_store", module=__name__)

RULES = {s.code: s.retention for s in SERVICES}


@pytest.fixture
def records_store(store):
    """A store with the shipped layers and the records seed (``prepared`` is its ``Seeded``)."""
    return store


def _as_of(seeded, years: float) -> datetime:
    return seeded.closed_at + timedelta(days=365.25 * years + 2)


def _expected_due(seeded, store, kind: str, as_of: datetime) -> set[int]:
    """The rule written again: closed, the service has years for the kind, far enough back."""
    rows = snapshot(store)["service_requests"]
    out = set()
    for rid, code, status, *_ in rows:
        years = RULES[code].years(kind)
        if status == "closed" and years is not None and seeded.closed_at <= cutoff(as_of, years):
            out.add(rid)
    return out


def test_a_run_removes_what_each_due_rule_names_and_nothing_else(records_store, prepared):
    store, seeded = records_store, prepared
    before = snapshot(store)
    as_of = _as_of(seeded, 4)  # contact (1 and 2 y) and media (1 and 3 y) due; text (5 y) not
    report = run_retention(store, as_of=as_of, batch_size=7)
    after = snapshot(store)

    due = {k: _expected_due(seeded, store, k, as_of) for k in ("contact", "text", "media")}
    assert due["contact"] and due["media"] and not due["text"]
    assert report.kinds["contact"].applied == len(due["contact"])
    assert {r for r, k in after["retention_applied"] if k == "contact"} == due["contact"]

    for rid, *personal, _lang in [(r[1], *r[2:8], r[8]) for r in after["reporters"]]:
        assert (not any(personal)) == (rid in due["contact"]), rid
    for row in after["contacts"]:
        assert (row[5] == "" and row[7] == "none") == (row[1] in due["contact"])
    assert len(after["notifications"]) == len(before["notifications"])
    for old, new in zip(before["notifications"], after["notifications"], strict=True):
        if new[1] in due["contact"]:  # the row stays (a survey hangs on it), its address not
            assert new[3] == f"removed:{new[0]}" and new[2] == old[2]
        else:
            assert new == old
    assert {r[1] for r in after["followers"]} == {
        r[1] for r in before["followers"] if r[1] not in due["contact"]}
    assert before["followers"] and after["survey_answers"] == before["survey_answers"]
    old_media = {r[0]: r[6] for r in before["service_requests"]}
    for row in after["service_requests"]:
        assert row[6] == ("" if row[0] in due["media"] else old_media[row[0]])
    assert report.kinds["media"].changes["media"] == sum(
        1 for r in before["service_requests"] if r[0] in due["media"] and r[6])
    # text is not due: descriptions, notes and answers are as they were
    assert after["request_notes"] == before["request_notes"]
    assert [r[4] for r in after["service_requests"]] == [r[4] for r in before["service_requests"]]

    # the request stays a public record: service, status, dates, point, groups, districts
    keep = [0, 1, 2, 5, 7, 8, 9, 10, 13]
    assert ([[r[i] for i in keep] for r in after["service_requests"]]
            == [[r[i] for i in keep] for r in before["service_requests"]])
    assert after["request_districts"] == before["request_districts"]


def test_free_text_is_redacted_everywhere_it_was_copied(records_store, prepared):
    store, seeded = records_store, prepared
    as_of = _as_of(seeded, 6)
    report = run_retention(store, as_of=as_of)
    after = snapshot(store)
    due = {r for r, k in after["retention_applied"] if k == "text"}
    assert due == _expected_due(seeded, store, "text", as_of) and due
    for row in after["service_requests"]:
        rid, description, notes = row[0], row[4], row[3]
        if rid in due:
            assert description in ("", REDACTED_TEXT)
            assert PHONE not in notes and notes.startswith("Done; questions to")
        else:
            assert description == "" or TYPED in description
    for row in after["request_notes"]:
        assert (row[3] == REDACTED_TEXT) == (row[1] in due)
    assert {r[1] for r in after["survey_answers"]} & due
    for row in after["survey_answers"]:  # the rating stays for the KPIs, the comment goes
        assert row[3] == (REDACTED_TEXT if row[1] in due else f"Thanks, {TYPED}")
    for row in after["request_audit"]:
        if int(row[2]) in due:
            assert PHONE not in row[3] and "773-555-0199" not in row[3]
    # PHF keeps text for ever: its free-text answers stay; no PHF request is in `due`
    phf = {r[0] for r in after["service_requests"] if r[1] == "PHF"}
    assert phf and not phf & due
    assert all("gate code" in r[11] for r in after["service_requests"] if r[0] in phf)
    assert report.kinds["text"].changes["notes"] == sum(
        1 for r in snapshot(store)["request_notes"] if r[1] in due)


def test_free_text_answers_go_with_the_text_rule(records_store, prepared):
    store = records_store
    store.catalogue.upsert([s if s.code != "PHF" else replace(s, retention=RetentionRule(1, 1, 1))
                            for s in SERVICES])
    run_retention(store, as_of=_as_of(prepared, 2))
    rows = {r[0]: r for r in snapshot(store)["service_requests"] if r[1] == "PHF"}
    closed = [r for r in rows.values() if r[2] == "closed"]
    assert closed
    for r in closed:  # the free-text answer goes, the list answer stays
        assert REDACTED_TEXT in r[11] and "gate code" not in r[11] and "curb" in r[11]


def test_dry_run_counts_what_the_run_does_and_changes_nothing(records_store, prepared):
    store = records_store
    before = snapshot(store)
    as_of = _as_of(prepared, 6)
    dry = run_retention(store, as_of=as_of, dry_run=True, batch_size=4)
    assert snapshot(store) == before
    real = run_retention(store, as_of=as_of, batch_size=11)
    for kind in ("contact", "text", "media"):
        assert dry.kinds[kind].applied == real.kinds[kind].applied > 0
        assert dict(dry.kinds[kind].changes) == dict(real.kinds[kind].changes)
    assert real.kinds["contact"].changes["reporters"] > 0


def test_a_held_request_is_untouched_and_released_is_applied_next_run(records_store, prepared):
    store, seeded = records_store, prepared
    closed = [i for i in seeded.ids if i not in seeded.open_ids]
    hold = place_hold(store, reason="Claim 114", owner="rita", zone=UTC, ids=closed[:3])
    before = snapshot(store)
    as_of = _as_of(seeded, 6)
    report = run_retention(store, as_of=as_of)
    after = snapshot(store)
    held = set(closed[:3])
    for table, rid_at in (("reporters", 1), ("contacts", 1), ("request_notes", 1),
                          ("notifications", 1), ("service_requests", 0)):
        assert ([r for r in after[table] if r[rid_at] in held]
                == [r for r in before[table] if r[rid_at] in held]), table
    assert not {r for r, _ in after["retention_applied"]} & held
    codes = {r[0]: r[1] for r in before["service_requests"]}
    assert report.kinds["contact"].held == sum(  # INF keeps contacts: never due, never held
        1 for i in held if RULES[codes[i]].contact_years is not None) == 2

    again = run_retention(store, as_of=as_of)
    assert snapshot(store) == after  # a re-run changes nothing
    assert all(k.applied == 0 for k in again.kinds.values())

    store.holds.release(hold.id, by="rita")
    run_retention(store, as_of=as_of)
    assert {i for i in held if codes[i] != "INF"} <= {
        r for r, _ in snapshot(store)["retention_applied"]}
    entries = store.audit.entries("hold", hold.id)
    assert [e["action"] for e in entries] == ["hold_placed", "hold_released"]
    assert entries[0]["detail"]["reason"] == "Claim 114" and entries[0]["actor"] == "rita"


def test_after_retention_no_personal_data_of_due_requests_is_stored(records_store, prepared):
    store = records_store
    run_retention(store, as_of=_as_of(prepared, 10))
    dump = repr(snapshot(store))
    closed = [k for k, i in enumerate(prepared.ids) if i not in prepared.open_ids]
    open_ = [k for k, i in enumerate(prepared.ids) if i in prepared.open_ids]
    for k in closed:  # every service but INF (no rule)
        if k % 3 != 2:
            assert all(f"'{s}'" not in dump for s in personal_strings(k)), k
    for k in open_:
        assert f"'{personal_strings(k)[0]}'" in dump


def test_anonymised_requests_still_count_in_hotspots_kpis_and_duplicates(records_store,
                                                                         prepared):
    store = records_store
    now = datetime.now(UTC)
    cells = store.hotspots.counts(8, RequestFilter())
    kpis = kpi_table(store.hotspots.kpi_frame(None), "service", now)
    groups = {r[0]: (r[9], r[10]) for r in snapshot(store)["service_requests"]}
    assert prepared.children and cells["reporters"].sum() == len(prepared.ids)

    report = run_retention(store, as_of=_as_of(prepared, 10))
    assert report.kinds["contact"].applied > 0
    assert store.hotspots.counts(8, RequestFilter()).equals(cells)
    assert kpi_table(store.hotspots.kpi_frame(None), "service", now).equals(kpis)
    assert {r[0]: (r[9], r[10]) for r in snapshot(store)["service_requests"]} == groups
    # regrouping from scratch finds the very same groups
    assert regroup_duplicates(store)[2] == 0



def test_the_photo_files_of_expired_media_are_deleted_and_linked_ones_kept(records_store,
                                                                           prepared, tmp_path):
    import os

    from sqlalchemy import update

    from geo311.media import FileMediaStore
    from geo311.store import tables as t

    store, seeded = records_store, prepared
    as_of = _as_of(seeded, 4)
    due = _expected_due(seeded, store, "media", as_of)
    every = {r[0] for r in snapshot(store)["service_requests"]}
    expired, kept = min(due), min(every - due)
    media = FileMediaStore(tmp_path / "media")
    names = {key: f"{key:0>32}.jpg" for key in ("a1", "b2", "c3", "d4")}
    for name in names.values():
        for file in (name, name.replace(".jpg", "_thumb.jpg")):
            media.put(file, b"\xff\xd8 not checked here")
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    for path in (tmp_path / "media").rglob("*.jpg"):
        if names["d4"][:-4] not in path.name:  # d4: an orphan written a moment ago
            os.utime(path, (old, old))
    with store.engine.begin() as conn:
        for rid, key in ((expired, "a1"), (kept, "b2")):
            conn.execute(update(t.service_requests).where(t.service_requests.c.id == rid)
                         .values(media_url=f"https://311.city.example/media/{names[key]}"))

    report = run_retention(store, as_of=as_of, batch_size=50, media=media)
    # a1 (its link emptied) and c3 (linked by nothing, old) go with their thumbnails.
    assert report.media_files_removed == 4
    assert not media.exists(names["a1"]) and not media.exists(names["c3"])
    assert media.exists(names["b2"]) and media.exists(names["b2"].replace(".jpg", "_thumb.jpg"))
    assert media.exists(names["d4"])  # may belong to a report being taken in
    assert run_retention(store, as_of=as_of, media=media).media_files_removed == 0
    assert any("photo files" in line for line in report.lines())
