"""What a new report may contain: one set of rules for every channel.

Open311, the citizen form, staff intake and the import all hand a report to
``intake.submit``, which checks it here first, so the same report gets the same
answer, with the same words, whichever way it arrived. The rules are the ones
GeoReport v2 sets for a description (no HTML, 4,000 characters), the service's own
questions (required ones answered, answers of the right kind), and text a database,
a page, an XML document or a mail can carry (no control characters, NUL above all).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from geo311.errors import InvalidRequest
from geo311.model import Attribute, NewRequest, Reporter, Service

MAX_DESCRIPTION = 4000
MAX_ADDRESS = 500
REPORTER_LIMITS = {"first_name": 100, "last_name": 100, "email": 254, "phone": 40,
                   "device_id": 200, "account_id": 200}
_HTML = re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>|&[A-Za-z]+;|&#\d+;|javascript:", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Characters no text field may hold (line breaks and tabs are allowed in a description).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_LINE_BREAKS = re.compile("[\t\n\r\u2028\u2029]")


def check_report(new: NewRequest, service: Service) -> NewRequest:
    """Check every field of a new report against the rules; return it with answers checked.

    Raises ``InvalidRequest`` naming the first field that breaks a rule.

    Examples
    --------
    >>> check_report(NewRequest("SCB", description="<b>hi</b>"), service)  # doctest: +SKIP
    Traceback (most recent call last):
    InvalidRequest: description may not contain HTML or code; found '<b>'
    """
    check_description(new.description)
    check_line("address", new.address, MAX_ADDRESS)
    if new.media_url:
        check_media_url(new.media_url)
    check_reporter(new.reporter)
    return replace(new, attributes=check_answers(service, new.attributes))


def check_line(name: str, value: str, limit: int) -> None:
    """One line of text: at most ``limit`` characters, no control characters."""
    if len(value) > limit:
        raise InvalidRequest(f"{name} has {len(value)} characters but at most {limit} "
                             "are allowed")
    found = _CONTROL.search(value) or _LINE_BREAKS.search(value)
    if found:
        raise InvalidRequest(f"{name} contains a control character "
                             f"(U+{ord(found.group(0)):04X})")


def check_description(text: str) -> None:
    """Refuse descriptions with HTML or code, control characters, or over 4,000 characters."""
    if len(text) > MAX_DESCRIPTION:
        raise InvalidRequest(f"description has {len(text)} characters but at most "
                             f"{MAX_DESCRIPTION} are allowed")
    found = _CONTROL.search(text)
    if found:
        raise InvalidRequest(f"description contains control characters "
                             f"(U+{ord(found.group(0)):04X})")
    html = _HTML.search(text)
    if html:
        raise InvalidRequest(f"description may not contain HTML or code; found "
                             f"{html.group(0)[:40]!r}")


def check_media_url(url: str) -> None:
    """Accept only absolute http(s) URLs with a host."""
    parts = urlsplit(url)
    if len(url) > 2000 or parts.scheme.lower() not in ("http", "https") or not parts.netloc \
            or any(c.isspace() for c in url) or _CONTROL.search(url):
        raise InvalidRequest(f"media_url was {url[:100]!r} but is expected to be an http(s) "
                             "URL of at most 2000 characters")


def check_reporter(reporter: Reporter) -> None:
    """The reporter's personal data: lengths, no control characters, a real email form."""
    for name, limit in REPORTER_LIMITS.items():
        check_line(name, getattr(reporter, name), limit)
    if reporter.email and not _EMAIL.match(reporter.email):
        raise InvalidRequest("email is not an email address")


def check_answers(service: Service, answers: Mapping[str, Sequence[str]]
                  ) -> dict[str, tuple[str, ...]]:
    """Validate answers against the service definition; every problem is named.

    Examples
    --------
    >>> check_answers(service, {"nature": ["garbage_in_yard"]})  # doctest: +SKIP
    {'nature': ('garbage_in_yard',)}
    """
    known = {a.code: a for a in service.attributes}
    problems = []
    unknown = sorted(set(answers) - set(known))
    if unknown:
        problems.append(f"service {service.code} has no attributes {unknown} "
                        f"(it has {sorted(known)})")
    out: dict[str, tuple[str, ...]] = {}
    for code, attribute in known.items():
        values = [v.strip() for v in answers.get(code, []) if v.strip()]
        if not values:
            if attribute.required:
                problems.append(f"attribute[{code}] is required: {attribute.description}")
            continue
        if not attribute.variable:
            problems.append(f"attribute[{code}] is information, not a question")
            continue
        problem = _check_answer(attribute, values)
        if problem:
            problems.append(problem)
        else:
            out[code] = tuple(values)
    if problems:
        raise InvalidRequest("; ".join(problems))
    return out


def _check_answer(a: Attribute, values: list[str]) -> str | None:
    if a.datatype != "multivaluelist" and len(values) > 1:
        return f"attribute[{a.code}] takes one value, got {len(values)}"
    if any(len(v) > MAX_DESCRIPTION for v in values):
        return f"attribute[{a.code}] is longer than {MAX_DESCRIPTION} characters"
    if any(_CONTROL.search(v) for v in values):
        return f"attribute[{a.code}] contains control characters"
    value = values[0]
    if a.datatype == "string" and ("\n" in value or "\r" in value):
        return f"attribute[{a.code}] is a string and may not contain line breaks"
    if a.datatype == "number":
        try:
            if len(value) > 100 or not math.isfinite(float(value)):
                raise ValueError(value)
        except ValueError:
            return f"attribute[{a.code}] was {value[:100]!r} but is expected to be a number"
    if a.datatype == "datetime":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return (f"attribute[{a.code}] was {value[:100]!r} but is expected to be an "
                    "ISO 8601 date")
    if a.datatype in ("singlevaluelist", "multivaluelist"):
        keys = [k for k, _ in a.values]
        bad = [v for v in values if v not in keys]
        if bad:
            return f"attribute[{a.code}] was {bad} but is expected to be in {keys}"
        if len(set(values)) != len(values):
            return f"attribute[{a.code}] repeats a value"
    return None
