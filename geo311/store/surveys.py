"""Satisfaction answers: one per closing notification, against the request it closed.

The unique key on the notification makes a survey link good once, even when two
answers race: the second insert fails and is reported as already answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, insert, select, true
from sqlalchemy.exc import IntegrityError

from geo311.errors import Conflict, InvalidRequest, NotFound
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import now_utc, to_frame

LOGGER = logging.getLogger(__name__)

#: The ratings a resident may give: 1 (very dissatisfied) to 5 (very satisfied).
RATINGS = (1, 2, 3, 4, 5)
#: Longest comment kept, in characters.
MAX_COMMENT = 2000


@dataclass(frozen=True)
class SurveyAnswer:
    """One resident's rating of a closed request."""

    id: int
    notification_id: int
    request_id: int
    rating: int
    comment: str
    language: str
    answered: datetime


class Surveys:
    """Answers to the survey sent with each closing notification."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def answer(self, notification_id: int, rating: int, comment: str = "") -> SurveyAnswer:
        """Store the answer to one closing notification's survey; audited.

        Raises ``NotFound`` for a notification that is not a closing one and
        ``Conflict`` (409) for a second answer.

        Examples
        --------
        >>> store.surveys.answer(41, 5, "Fixed the same day")  # doctest: +SKIP
        """
        if rating not in RATINGS:
            raise InvalidRequest(f"rating was {rating!r} but is expected to be in {RATINGS}")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT:
            raise InvalidRequest(f"the comment has {len(comment)} characters but at most "
                                 f"{MAX_COMMENT} are kept")
        n = t.notifications.c
        now = now_utc()
        try:
            with self.db.begin() as conn:
                row = conn.execute(select(n.request_id, n.kind, n.language)
                                   .where(n.id == int(notification_id))).first()
                if row is None or row.kind != "closed":
                    raise NotFound("this survey does not exist")
                answer_id = conn.execute(insert(t.survey_answers).values(
                    notification_id=int(notification_id), request_id=row.request_id,
                    rating=rating, comment=comment, language=row.language or "en",
                    answered=now).returning(t.survey_answers.c.id)).scalar_one()
                # The entry names the rating, not the comment: the log is read more widely.
                write_audit(conn, "survey_answered", "request", row.request_id,
                            {"rating": rating, "answer": answer_id}, "resident")
        except IntegrityError as exc:
            raise Conflict("this survey was answered already: thank you") from exc
        LOGGER.info("survey of request #%s answered: %s", row.request_id, rating)
        return SurveyAnswer(int(answer_id), int(notification_id), int(row.request_id), rating,
                            comment, row.language or "en", now)

    def of_notification(self, notification_id: int) -> SurveyAnswer | None:
        """The answer given through one notification's link, or None."""
        return next(iter(self._select(t.survey_answers.c.notification_id
                                      == int(notification_id))), None)

    def of_request(self, request_id: int) -> list[SurveyAnswer]:
        """The answers about one request, oldest first (for staff)."""
        return self._select(t.survey_answers.c.request_id == int(request_id))

    def _select(self, where: Any) -> list[SurveyAnswer]:
        s = t.survey_answers.c
        stmt = (select(s.id, s.notification_id, s.request_id, s.rating, s.comment,
                       s.language, s.answered).where(where).order_by(s.id))
        with self.db.connect() as conn:
            return [SurveyAnswer(*row) for row in conn.execute(stmt).all()]

    def frame(self, layer_version_id: int, start: datetime | None = None,
              end: datetime | None = None) -> pd.DataFrame:
        """Answers given in [start, end): rating, service, agency and district per answer.

        The district is the request's in ``layer_version_id`` ("(none)" outside it).
        """
        s, sr, sv, rd = (t.survey_answers.c, t.service_requests.c, t.services.c,
                         t.request_districts.c)
        within = and_(true(), *([s.answered >= start] if start else []),
                      *([s.answered < end] if end else []))
        stmt = (select(s.rating, sr.service_code, sv.name, sv.agency, rd.district_id)
                .select_from(t.survey_answers
                             .join(t.service_requests, sr.id == s.request_id)
                             .join(t.services, sv.code == sr.service_code)
                             .outerjoin(t.request_districts,
                                        and_(rd.request_id == sr.id,
                                             rd.layer_version_id == int(layer_version_id))))
                .where(within))
        with self.db.connect() as conn:
            frame = to_frame(conn.execute(stmt).all(),
                             ["rating", "service", "service_name", "agency", "district"])
        frame["district"] = frame["district"].fillna("(none)")
        frame["agency"] = frame["agency"].fillna("").replace("", "(none)")
        return frame
