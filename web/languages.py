"""Which language a resident reads: the best match of their browser's ``Accept-Language``.

Mail to a reporter is written in it (``reporters.language``), on every channel that
has a browser or an app behind it: the report form and Open311 POST.
"""

from __future__ import annotations

from flask import request

from geo311.notifications import PHRASES


def reader_language() -> str:
    """The language asked for among those mail is written in, or "" (the city's default)."""
    return request.accept_languages.best_match(sorted(PHRASES)) or ""
