"""Retention: removing a closed request's contact details, free text and media when due.

Each service's rule (the catalogue's ``[retention]`` table and a service's own
``retention``) gives years after close for each kind. ``run_retention`` reads closed
requests in id order, in batches, and applies every kind that is due and not applied
yet, skipping requests under a legal hold. A batch commits whole, so a run stopped at
any point (even by ``kill -9``) is resumed by running again, and a second run changes
nothing. The request, its location, service, dates and duplicate links stay: it is a
public record and still counts in hotspots, KPIs and duplicate groups.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from geo311.errors import InvalidRequest
from geo311.media import MediaStore, linked_names, prune_media
from geo311.model import RETENTION_KINDS, RetentionRule
from geo311.store import Store
from geo311.store.retention import ClosedRow

LOGGER = logging.getLogger(__name__)

#: Closed requests read (and changed) per transaction.
DEFAULT_BATCH = 500
#: The largest batch: its ids are bound one by one in SQLite's ``IN`` lists.
MAX_BATCH = 5000
#: What each kind removes, as the summary says it.
KIND_WORDS = {"contact": "reporter contact", "text": "free text", "media": "media"}
_DAYS_PER_YEAR = 365.2425


def cutoff(as_of: datetime, years: float) -> datetime:
    """The latest close time that is ``years`` before ``as_of`` (whole years by the calendar).

    Examples
    --------
    >>> cutoff(datetime(2026, 2, 28, tzinfo=UTC), 2).date()
    datetime.date(2024, 2, 28)
    >>> cutoff(datetime(2024, 2, 29, tzinfo=UTC), 1).date()
    datetime.date(2023, 2, 28)
    """
    if float(years).is_integer():
        year = as_of.year - int(years)
        try:
            return as_of.replace(year=year)
        except ValueError:  # 29 February in a year without one
            return as_of.replace(year=year, day=28)
    return as_of - timedelta(days=years * _DAYS_PER_YEAR)


def due_kinds(rows: Sequence[ClosedRow], rules: Mapping[str, RetentionRule],
              as_of: datetime) -> dict[str, list[ClosedRow]]:
    """The rows each kind is due for: closed at least its years before ``as_of``.

    Examples
    --------
    >>> row = ClosedRow(1, "SCB", datetime(2020, 1, 1, tzinfo=UTC))
    >>> due = due_kinds([row], {"SCB": RetentionRule(2, 10)}, datetime(2026, 1, 1, tzinfo=UTC))
    >>> {k: [r.id for r in v] for k, v in due.items()}
    {'contact': [1], 'text': [], 'media': []}
    """
    limits = {(code, kind): cutoff(as_of, years) for code, rule in rules.items()
              for kind in RETENTION_KINDS if (years := rule.years(kind)) is not None}
    out: dict[str, list[ClosedRow]] = {kind: [] for kind in RETENTION_KINDS}
    for row in rows:
        for kind in RETENTION_KINDS:
            limit = limits.get((row.service_code, kind))
            if limit is not None and row.closed <= limit:
                out[kind].append(row)
    return out


@dataclass
class KindReport:
    """What one kind did (or would do) in a run."""

    due: int = 0  # requests due and not applied before
    held: int = 0  # of those, skipped under a legal hold
    changes: Counter[str] = field(default_factory=Counter)  # rows changed, by what
    by_service: Counter[str] = field(default_factory=Counter)  # requests applied, by code

    @property
    def applied(self) -> int:
        """Requests the kind was applied to (due and not held)."""
        return self.due - self.held


@dataclass
class RetentionReport:
    """A run's summary: counts by rule, what was read, and how long it took."""

    as_of: datetime
    dry_run: bool
    run: str
    read: int = 0
    already: dict[str, int] = field(default_factory=dict)  # applied before this run
    kinds: dict[str, KindReport] = field(
        default_factory=lambda: {k: KindReport() for k in RETENTION_KINDS})
    rules: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> years -> services
    seconds: float = 0.0
    #: Photo files deleted because no request links them any more (None: not looked at).
    media_files_removed: int | None = None

    def changed_anything(self) -> bool:
        """Whether a row was changed (never for a dry run)."""
        return not self.dry_run and any(sum(k.changes.values()) for k in self.kinds.values())

    def lines(self) -> list[str]:
        """The summary a person reads."""
        verb = "would apply" if self.dry_run else "applied"
        head = (f"retention {'dry run' if self.dry_run else 'run'} as of "
                f"{self.as_of:%Y-%m-%d %H:%M} UTC: {self.read:,} closed requests read in "
                f"{self.seconds:.1f} s")
        out = [head]
        for kind in RETENTION_KINDS:
            k = self.kinds[kind]
            years = ", ".join(f"{y} y: {n} services" for y, n in self.rules.get(kind, {}).items())
            changes = ", ".join(f"{n:,} {what}" for what, n in sorted(k.changes.items()))
            out.append(f"  {kind} ({KIND_WORDS[kind]}; {years or 'no rule'}): {verb} to "
                       f"{k.applied:,} requests ({changes or 'no rows changed'}); "
                       f"{k.held:,} held; {self.already.get(kind, 0):,} done before")
        if self.media_files_removed is not None:
            out.append(f"  photo files no request links any more: "
                       f"{self.media_files_removed:,} deleted")
        return out

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (``--json``)."""
        return {
            "as_of": self.as_of.isoformat(), "dry_run": self.dry_run, "run": self.run,
            "read": self.read, "seconds": round(self.seconds, 3),
            "media_files_removed": self.media_files_removed,
            "rules": {kind: {
                "years": self.rules.get(kind, {}), "due": k.due, "held": k.held,
                "applied": k.applied, "done_before": self.already.get(kind, 0),
                "changes": dict(sorted(k.changes.items())),
                "by_service": dict(sorted(k.by_service.items())),
            } for kind, k in self.kinds.items()},
        }


def rule_summary(rules: Mapping[str, RetentionRule]) -> dict[str, dict[str, int]]:
    """How many services keep each kind for how many years (``"2"`` -> 40 services)."""
    out: dict[str, dict[str, int]] = {}
    for kind in RETENTION_KINDS:
        counts = Counter(f"{years:g}" for rule in rules.values()
                         if (years := rule.years(kind)) is not None)
        out[kind] = dict(sorted(counts.items(), key=lambda kv: float(kv[0])))
    return out


def run_retention(store: Store, *, as_of: datetime | None = None, dry_run: bool = False,
                  batch_size: int = DEFAULT_BATCH, progress: Callable[[int], object] | None = None,
                  actor: str = "system", media: MediaStore | None = None) -> RetentionReport:
    """Apply every due retention rule in batches (or only count them, ``dry_run``).

    With ``media`` (where photos are kept), a real run then deletes the photo files no
    stored request links any more: those whose links the media rule emptied, and any an
    interrupted run left.

    Examples
    --------
    >>> report = run_retention(store, dry_run=True)  # doctest: +SKIP
    >>> report.kinds["contact"].applied  # doctest: +SKIP
    1204
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise InvalidRequest(f"batch_size was {batch_size} but is expected to be between 1 "
                             f"and {MAX_BATCH}")
    started = time.perf_counter()
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    rules = store.retention.rules()
    report = RetentionReport(as_of=as_of, dry_run=dry_run,
                             run=datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ"),
                             already=store.retention.applied_count(), rules=rule_summary(rules))
    after = 0
    while True:
        rows = store.retention.closed_after(after, batch_size)
        if not rows:
            break
        after = rows[-1].id
        report.read += len(rows)
        due = due_kinds(rows, rules, as_of)
        done, holding = store.retention.done_and_held([r.id for r in rows])
        plan: dict[str, list[int]] = {}
        codes: dict[int, str] = {r.id: r.service_code for r in rows}
        for kind, found in due.items():
            todo = [r.id for r in found if (r.id, kind) not in done]
            report.kinds[kind].due += len(todo)
            plan[kind] = [i for i in todo if i not in holding]
        if dry_run:
            counts = store.retention.measure(plan)
            skipped: set[int] = set()
        else:
            counts, skipped = store.retention.apply(plan, run=report.run, as_of=as_of,
                                                    actor=actor)
        for kind, ids in plan.items():
            k = report.kinds[kind]
            applied = [i for i in ids if i not in skipped]
            k.held += len(ids) - len(applied) + sum(
                1 for r in due[kind] if r.id in holding and (r.id, kind) not in done)
            k.by_service.update(codes[i] for i in applied)
            k.changes.update(counts.get(kind, {}))
        if progress is not None:
            progress(len(rows))
    if media is not None and not dry_run:
        report.media_files_removed = prune_media(media, linked_names(
            store.retention.media_links()))
    report.seconds = time.perf_counter() - started
    if not dry_run:
        store.audit.add("retention_run", "retention", report.run, report.as_dict(), actor)
    LOGGER.info("%s", "; ".join(report.lines()))
    return report
