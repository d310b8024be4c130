"""Free-text redaction: phone numbers, email addresses and ID numbers masked in public text.

Residents type "call me at 312-555-0199" into descriptions, and staff paste the same into
status notes. The public sees such text with each identifier replaced by a visible token
("[phone removed]"); staff keep the stored text intact. Detection is by patterns written
for 311 text: they leave addresses ("4800 N ELSTON AVE"), service request numbers
("SR21-00123456", "#12345"), dates, times, ZIP codes, counts and prices alone, which
is measured on the labelled snippets in ``tests/data/redaction_snippets.jsonl``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PHONE_TOKEN = "[phone removed]"
EMAIL_TOKEN = "[email removed]"
NUMBER_TOKEN = "[number removed]"
TOKENS = {"phone": PHONE_TOKEN, "email": EMAIL_TOKEN, "ssn": NUMBER_TOKEN,
          "card": NUMBER_TOKEN}

#: Top-level domains an obfuscated address ("maria at example dot com") may end in; a
#: spelled-out "at ... dot" is read as an address only with one of these, so "meet at
#: the corner dot" stays prose.
_TLDS = ("com|net|org|edu|gov|mil|info|biz|io|co|us|uk|pl|cn|de|fr|es|mx|ca|me|app|"
         "email|online|xyz|ru|in|br|it|nl|eu|ie|au|jp|hk|tw")

# Not glued to a word, a "#" (tracking numbers), a dash or a decimal point before it.
_LEFT = r"(?<![\w#$+./:-])"
# Not followed by a word character or a dash and digit (a longer identifier).
_RIGHT = r"(?![\w]|[-./]\d)"
_EXT = r"(?:\s*(?:x|ext\.?|extension|ex\.)\s*\d{1,6})?"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Email, plain: local@domain.tld.
    ("email", re.compile(r"(?<![\w.+'-])[\w.+'-]{1,64}@[\w-]+(?:\.[\w-]+){0,8}\.[A-Za-z]{2,24}\b")),
    # Email, obfuscated: "maria.lopez at example dot com", "maria [at] example [dot] com".
    ("email", re.compile(
        r"(?<![\w.+-])[\w.+-]{1,64}(?:\sdot\s[\w.+-]{1,64}){0,4}"
        r"\s*(?:[\[({<]\s*(?:at|@)\s*[\])}>]|\sat\s|@)\s*"
        r"[\w-]+(?:\s*(?:[\[({<]\s*(?:dot|\.)\s*[\])}>]|\sdot\s|\.)\s*[\w-]+){0,4}?"
        r"\s*(?:[\[({<]\s*(?:dot|\.)\s*[\])}>]|\sdot\s|\.)\s*"
        rf"(?:{_TLDS})\b", re.IGNORECASE)),
    # North American numbers: optional +1, area code (maybe in parentheses), exchange,
    # line, optional extension. Area code and exchange start with 2-9.
    ("phone", re.compile(
        _LEFT + r"(?:\+?\s?1\s*[\s.-]?\s*)?(?:\(\s*[2-9]\d{2}\s*\)|[2-9]\d{2})\s*[.-]?\s*"
        r"[2-9]\d{2}\s*[.-]?\s*\d{4}" + _EXT + _RIGHT)),
    # The same with a slash after the area code: "708/555-0123".
    ("phone", re.compile(_LEFT + r"[2-9]\d{2}/[2-9]\d{2}[.-]\d{4}" + _EXT + _RIGHT)),
    # Local seven-digit numbers written with a separator: "555-0199", "555.0199".
    ("phone", re.compile(_LEFT + r"[2-9]\d{2}[.-]\d{4}" + _EXT + _RIGHT)),
    # International: +44 20 7946 0958, 0048 601 234 567, +86 (10) 1234-5678.
    ("phone", re.compile(
        r"(?<![\w+#$./:-])(?:\+|\b00)\s?[1-9]\d{0,2}(?:\s?\(0\))?(?:[\s.-]?(?:\(\d{1,5}\)|\d{1,5})){2,6}"
        + _EXT + _RIGHT)),
    # National forms with a trunk 0: UK "020 7946 0958", "07700 900123".
    ("phone", re.compile(_LEFT + r"0\d{2,4}[\s-]\d{3,4}[\s-]?\d{3,4}" + _RIGHT)),
    # Chinese mobiles: 11 digits from 13x-19x, maybe grouped 3-4-4.
    ("phone", re.compile(_LEFT + r"1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}" + _RIGHT)),
    # Social security numbers: 123-45-6789 or 123 45 6789.
    ("ssn", re.compile(_LEFT + r"(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}"
                       + _RIGHT)),
    # Card-like runs of 13 to 19 digits, maybe grouped; kept only if they pass Luhn.
    ("card", re.compile(_LEFT + r"(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}"
                        r"|\d{4}([ -])\d{6}\2\d{5})" + _RIGHT)),
)

#: Words after which any run of 7 to 15 digits is a phone number ("tel 601 234 567").
_CUED = re.compile(
    r"(?:\b(?:call|phone|tel|telephone|cell|mobile|text|txt|whatsapp|contact|fax|"
    r"tel\u00e9fono|telefono|celular|numer|nr|kom)\b\.?|\u7535\u8bdd|\u624b\u673a)"
    r"[\s:.,]*(?:(?:me|us|at|on|is|number|no\.?|#|nr|de)\s*[:.]?\s*){0,3}"
    r"(\+?\(?\d[\d\s().-]{5,22}\d)", re.IGNORECASE)


#: Every identifier holds a digit, an "@" or a spelled-out "at": text without one is left
#: as it is without trying each pattern.
#: What any identifier's text holds (a digit, "@", or "at" as in "maria at example.com"):
#: text without it is passed over, here and in vectorised form (``MAYBE_IDENTIFIER``).
MAYBE_IDENTIFIER = r"(?i)\d|@|\bat\b"
_MAYBE = re.compile(MAYBE_IDENTIFIER)


@dataclass(frozen=True)
class Finding:
    """An identifier found in a text: where it is and what kind it is."""

    start: int
    end: int
    kind: str


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check cards carry.

    Examples
    --------
    >>> luhn_valid("4111111111111111")
    True
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def find_identifiers(text: str) -> list[Finding]:
    """Phone numbers, email addresses and ID numbers in ``text``, in order, not overlapping.

    Where candidates overlap the longest wins, so a card number is not read as a phone
    number and its rest.

    Examples
    --------
    >>> find_identifiers("call 312-555-0199 about 4800 N ELSTON AVE")
    [Finding(start=5, end=17, kind='phone')]
    """
    found: list[Finding] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            digits = _digits(m.group())
            if kind == "card" and not (13 <= len(digits) <= 19 and luhn_valid(digits)):
                continue
            if kind == "phone" and not 7 <= len(digits) <= 18:
                continue
            found.append(Finding(start, end, kind))
    for m in _CUED.finditer(text):
        digits = _digits(m.group(1))
        if 7 <= len(digits) <= 15:
            found.append(Finding(m.start(1), m.end(1), "phone"))
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    kept: list[Finding] = []
    for f in found:
        if kept and f.start < kept[-1].end:
            if f.end - f.start > kept[-1].end - kept[-1].start:
                kept[-1] = f
            continue
        kept.append(f)
    return kept


def redact_text(text: str) -> str:
    """``text`` with every phone number, email address and ID number replaced by a token.

    Examples
    --------
    >>> redact_text("call me at 312-555-0199 or maria.lopez@example.com")
    'call me at [phone removed] or [email removed]'
    """
    if not text or not _MAYBE.search(text):
        return text
    found = find_identifiers(text)
    if not found:
        return text
    parts, last = [], 0
    for f in found:
        parts.append(text[last:f.start])
        parts.append(TOKENS[f.kind])
        last = f.end
    parts.append(text[last:])
    return "".join(parts)
