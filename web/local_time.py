"""Times as residents read them: in the city's zone, in their language, and how long ago.

Pages keep the exact instant in a ``<time datetime=…>`` attribute for machines and
assistive technology; the words are for people ("Jul 1, 2013, 2:05 PM CDT, 3 days ago").
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from babel.dates import format_date, format_time, format_timedelta

#: The language of public pages until a resident chooses one.
DEFAULT_LOCALE = "en_US"


def when_words(when: datetime | None, zone: tzinfo, *, now: datetime | None = None,
               locale: str = DEFAULT_LOCALE) -> str:
    """``when`` in the city's zone and ``locale``, with how long ago (or ahead) it is."""
    if when is None:
        return ""
    local = when.astimezone(zone)
    text = (f"{format_date(local, 'medium', locale=locale)}, "
            f"{format_time(local, 'short', locale=locale)} {local.tzname() or ''}").strip()
    delta = when - (now or datetime.now(UTC))
    return f"{text} ({format_timedelta(delta, add_direction=True, locale=locale)})"
