"""Notes on requests: what staff tell the resident (public) and each other (internal)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import insert, select

from geo311.errors import InvalidRequest
from geo311.model import NOTE_VISIBILITIES, RequestNote
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)


class Notes:
    """The notes of each request, oldest first."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, request_id: int, visibility: str, body: str, *, author: str) -> RequestNote:
        """Store one note; audited (the entry names the note, not its text).

        Examples
        --------
        >>> store.notes.add(7, "internal", "Caller rang twice", author="ana")  # doctest: +SKIP
        """
        if visibility not in NOTE_VISIBILITIES:
            raise InvalidRequest(f"visibility was {visibility!r} but is expected to be in "
                                 f"{NOTE_VISIBILITIES}")
        if not body.strip():
            raise InvalidRequest("a note cannot be empty")
        now = now_utc()
        with self.db.begin() as conn:
            note_id = conn.execute(
                insert(t.request_notes).values(
                    request_id=int(request_id), visibility=visibility, body=body,
                    author=author, created=now)
                .returning(t.request_notes.c.id)).scalar_one()
            write_audit(conn, "note_added", "request", request_id,
                        {"note": note_id, "visibility": visibility}, author)
        LOGGER.info("%s note #%s on request #%s by %s", visibility, note_id, request_id, author)
        return RequestNote(int(note_id), int(request_id), visibility, body, author, now)

    def of(self, request_id: int,
           visibility: Sequence[str] = NOTE_VISIBILITIES) -> list[RequestNote]:
        """The notes of one request with these visibilities, oldest first."""
        n = t.request_notes.c
        stmt = (select(n.id, n.request_id, n.visibility, n.body, n.author, n.created)
                .where(n.request_id == int(request_id))
                .where(n.visibility.in_(list(visibility))).order_by(n.id))
        with self.db.connect() as conn:
            return [RequestNote(int(i), int(r), str(v), str(b), str(a), c)
                    for i, r, v, b, a, c in conn.execute(stmt).all()]

    def public_of(self, request_id: int) -> list[RequestNote]:
        """What the resident may read: the public notes only."""
        return self.of(request_id, ("public",))
