"""Street addresses as residents type them, read into comparable parts.

``usaddress`` (a trained CRF tagger) labels the tokens; this module only maps its
labels to one normal form: directionals as N/S/E/W, street types as the USPS
abbreviations (AV, AVE and AVENUE become AVE), bare numbered streets as ordinals
(71 becomes 71ST), units dropped, a number range reduced to its first number,
``1/2`` kept aside. Intersections are two street names joined by ``&``, ``and``,
``at``, ``@`` or ``/``, optionally after ``intersection of`` or ``corner of``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import takewhile
from typing import Any

import usaddress

#: Longest text taken as an address; longer input is refused, not parsed.
MAX_ADDRESS_CHARS = 200
#: Highest house number any US city uses (the largest grids reach 13000).
MAX_HOUSE_NUMBER = 99_999

DIRECTIONS = {
    "N": "N", "NORTH": "N", "S": "S", "SOUTH": "S", "E": "E", "EAST": "E", "W": "W",
    "WEST": "W", "NO": "N", "SO": "S",
}
#: Street types (USPS Publication 28 names and common variants) -> the abbreviation used.
STREET_TYPES = {
    "AV": "AVE", "AVE": "AVE", "AVEN": "AVE", "AVENUE": "AVE", "AVN": "AVE",
    "ST": "ST", "STR": "ST", "STREET": "ST", "STRT": "ST",
    "BLVD": "BLVD", "BLV": "BLVD", "BOULEVARD": "BLVD", "BOUL": "BLVD",
    "DR": "DR", "DRIVE": "DR", "DRV": "DR",
    "PL": "PL", "PLACE": "PL",
    "RD": "RD", "ROAD": "RD",
    "PKWY": "PKWY", "PARKWAY": "PKWY", "PKY": "PKWY", "PKWAY": "PKWY",
    "CT": "CT", "COURT": "CT", "CRT": "CT",
    "TER": "TER", "TERR": "TER", "TERRACE": "TER",
    "LN": "LN", "LANE": "LN",
    "HWY": "HWY", "HIGHWAY": "HWY",
    "EXPY": "EXPY", "EXPRESSWAY": "EXPY", "EXPWY": "EXPY",
    "SQ": "SQ", "SQUARE": "SQ",
    "PLZ": "PLZ", "PLAZA": "PLZ",
    "CIR": "CIR", "CIRCLE": "CIR",
    "WAY": "WAY", "ROW": "ROW", "WALK": "WALK", "TRL": "TRL", "TRAIL": "TRL",
    "ALY": "ALY", "ALLEY": "ALY", "CRES": "CRES", "CRESCENT": "CRES",
    "PARK": "PARK", "PL.": "PL", "AVE.": "AVE", "ST.": "ST",
}
INTERSECTION_WORDS = ("&", "AND", "AT", "@", "/", "AND/OR")
#: Words written before an intersection ("INTERSECTION OF A & B", "corner of A and B").
INTERSECTION_PREFIXES = ("AT THE INTERSECTION OF ", "THE INTERSECTION OF ", "INTERSECTION OF ",
                         "INTERSECTION ", "AT THE CORNER OF ", "THE CORNER OF ", "CORNER OF ")
_ORDINAL = {1: "ST", 2: "ND", 3: "RD"}


@dataclass(frozen=True)
class Street:
    """A street's name in normal form: pre-directional, name, type (each may be empty)."""

    pre_dir: str
    name: str
    suffix: str

    @property
    def label(self) -> str:
        """The street as written on a sign: ``S WOOD ST``."""
        return " ".join(p for p in (self.pre_dir, self.name, self.suffix) if p)

    @property
    def name_key(self) -> str:
        """The name without spaces or periods: LA SALLE, LASALLE; ST. LAWRENCE, ST LAWRENCE."""
        return self.name.replace(" ", "").replace(".", "")


@dataclass(frozen=True)
class ParsedAddress:
    """An address read into parts; ``reason`` says why it cannot be used, if so.

    ``kind`` is ``"address"`` (a house number on a street), ``"intersection"``
    (``street`` and ``cross``) or ``"street"`` (a street without a number).
    """

    kind: str
    street: Street | None = None
    number: int | None = None
    number_text: str = ""
    half: bool = False
    cross: Street | None = None
    unit: str = ""
    zipcode: str = ""
    place: str = ""
    state: str = ""
    reason: str = ""

    @property
    def label(self) -> str:
        """The address in normal form, e.g. ``6927 S JUSTINE ST`` or ``A & B``."""
        if self.street is None:
            return ""
        if self.kind == "intersection" and self.cross is not None:
            return f"{self.street.label} & {self.cross.label}"
        if self.number is None:
            return self.street.label
        return f"{self.number}{' 1/2' if self.half else ''} {self.street.label}"


def clean_text(text: object) -> tuple[str, str]:
    """Return (upper-case ASCII text, reason it is refused or "")."""
    if not isinstance(text, str):
        return "", f"an address is expected to be text but {type(text).__name__} arrived"
    if len(text) > MAX_ADDRESS_CHARS:
        return "", (f"the address has {len(text)} characters but at most "
                    f"{MAX_ADDRESS_CHARS} are accepted")
    folded = text
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", text)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    if not (folded.isascii() and folded.isprintable()):
        bad = sorted({c for c in folded
                      if ord(c) > 126 or (ord(c) < 32 and c not in "\t\n\r")})
        if bad:
            shown = "".join(bad[:5])
            return "", f"the address has characters no street address uses: {shown!r}"
    folded = " ".join(folded.replace(",", " , ").split()).strip(" ,")
    if not folded:
        return "", "the address is empty"
    return folded.upper(), ""


def parse_address(text: object) -> ParsedAddress:
    """Read one address, intersection or street name into normal form.

    Parameters
    ----------
    text : str
        What a resident typed, e.g. ``"2430-2432 n clark street apt 3"``.

    Returns
    -------
    ParsedAddress
        With ``reason`` set when the text cannot be read as a place in a city.

    Examples
    --------
    >>> parse_address("4853 S WOOD").label
    '4853 S WOOD'
    >>> parse_address("1234 1/2 w 71 street").label
    '1234 1/2 W 71ST ST'
    >>> parse_address("W FULLERTON AV and N PULASKI ROAD").label
    'W FULLERTON AVE & N PULASKI RD'
    >>> parse_address("INTERSECTION of Main St & Elm Street").label
    'MAIN ST & ELM ST'
    """
    cleaned, reason = clean_text(text)
    if reason:
        return ParsedAddress("none", reason=reason)
    return _parse_cached(cleaned)


#: The house number put before a bare street name so usaddress reads it in context.
_CONTEXT_NUMBER = "1234"


def parse_street(text: object) -> Street | None:
    """Read a street name alone (``W WEST END AVE``) into normal form, or None.

    usaddress is trained on whole addresses and misreads a bare name that starts with a
    directional word, so the name is read after a house number, as in an address.

    Examples
    --------
    >>> parse_street("W WEST END AV").label
    'W WEST END AVE'
    >>> parse_street("S SOUTH SHORE AVENUE").label
    'S SOUTH SHORE AVE'
    """
    cleaned, reason = clean_text(text)
    if reason:
        return None
    parsed = _parse_cached(f"{_CONTEXT_NUMBER} {cleaned}")
    if parsed.kind == "address" and parsed.number_text == _CONTEXT_NUMBER:
        return parsed.street
    alone = _parse_cached(cleaned)
    return alone.street if alone.kind == "street" else None


def label_tokens(text: str) -> list[tuple[str, str]]:
    """``usaddress.parse``, with each token's features computed once per process.

    The same tokens, features and trained tagger as ``usaddress.parse``, so the same
    labels; only the per-token feature dictionaries (half of its time) are reused.

    Examples
    --------
    >>> label_tokens("4853 S WOOD")
    [('4853', 'AddressNumber'), ('S', 'StreetNamePreDirectional'), ('WOOD', 'StreetName')]
    """
    tokens = usaddress.tokenize(text)
    if not tokens:
        return []
    return list(zip(tokens, usaddress.TAGGER.tag(_features(tokens)), strict=True))


def _features(tokens: list[str]) -> list[dict[str, object]]:
    """``usaddress.tokens2features`` over cached per-token features."""
    sequence = [dict(_token_features(tokens[0]))]
    previous = dict(sequence[-1])
    for token in tokens[1:]:
        features = dict(_token_features(token))
        current = dict(features)
        sequence[-1]["next"] = current
        features["previous"] = previous
        sequence.append(features)
        previous = current
    sequence[0]["address.start"] = True
    sequence[-1]["address.end"] = True
    if len(sequence) > 1:
        sequence[1]["previous"]["address.start"] = True  # type: ignore[index]
        sequence[-2]["next"]["address.end"] = True  # type: ignore[index]
    return sequence


@lru_cache(maxsize=1 << 16)
def _token_features(token: str) -> dict[str, object]:
    return usaddress.tokenFeatures(token)  # type: ignore[no-any-return]


@lru_cache(maxsize=1 << 17)
def _parse_cached(cleaned: str) -> ParsedAddress:
    for prefix in INTERSECTION_PREFIXES:
        if cleaned.startswith(prefix) and len(cleaned) > len(prefix):
            found = _parse_cached(cleaned[len(prefix):].lstrip(" :,"))
            if found.kind == "intersection":
                return found
            break
    # usaddress's tokenizer drops a lone "/" or "@"; both join an intersection.
    tokens = usaddress.tokenize(cleaned.replace(" / ", " & ").replace(" @ ", " & "))
    if all(tok.strip(",").isdigit() for tok in tokens):
        return ParsedAddress("none", reason=f"{cleaned[:20]!r} is a number, not an address")
    split = [i for i, tok in enumerate(tokens) if tok.strip(",") in INTERSECTION_WORDS]
    if split and 0 < split[0] < len(tokens) - 1:
        head, comma, tail = cleaned.partition(",")
        if comma and tail.strip(" ,"):
            # "A & B, SPRINGFIELD, MA 01103": the place after the second street.
            found = _parse_cached(head.strip())
            if found.kind == "intersection":
                place, state, zipcode = _place_parts(tail.replace(",", " ").split())
                return replace(found, place=place, state=state, zipcode=zipcode)
        return _intersection(tokens[: split[0]], tokens[split[0] + 1:])
    parts = _tag(cleaned)
    number_text = parts.get("AddressNumber", "")
    street = _street(parts, "")
    cross = _street(parts, "Second") if "SecondStreetName" in parts else None
    common: dict[str, Any] = {
        "unit": " ".join(p for p in (parts.get("OccupancyType", ""),
                                     parts.get("OccupancyIdentifier", "")) if p),
        "zipcode": parts.get("ZipCode", "")[:5], "place": parts.get("PlaceName", ""),
        "state": parts.get("StateName", ""),
    }
    if cross is not None and street is not None:
        return ParsedAddress("intersection", street=street, cross=cross, **common)
    if street is None:
        if number_text:
            return ParsedAddress("none", number_text=number_text,
                                 reason=f"no street name after the number {number_text!r}",
                                 **common)
        return ParsedAddress("none", reason=f"{cleaned[:60]!r} does not read as a street "
                                            "address or an intersection", **common)
    if not number_text:
        return ParsedAddress("street", street=street, **common)
    digits = "".join(takewhile(str.isdigit, number_text.lstrip("#")))
    if not digits:
        return ParsedAddress("none", street=street, number_text=number_text,
                             reason=f"house number {number_text!r} is not a number", **common)
    number = int(digits)
    if number > MAX_HOUSE_NUMBER or len(digits) > 6:
        return ParsedAddress("none", street=street, number_text=number_text,
                             reason=f"house number {digits} is larger than any city uses "
                                    f"(at most {MAX_HOUSE_NUMBER})", **common)
    half = "1/2" in parts.get("AddressNumberSuffix", "") or number_text.endswith("1/2")
    return ParsedAddress("address", street=street, number=number, number_text=number_text,
                         half=half, **common)


def _place_parts(tokens: list[str]) -> tuple[str, str, str]:
    """Place, state and ZIP code of the tokens after an intersection's comma."""
    words = [t.strip(",") for t in tokens if t.strip(",")]
    zipcode = ""
    if words and words[-1][:5].isdigit() and len(words[-1].split("-")[0]) == 5:
        zipcode = words.pop()[:5]
    state = ""
    if len(words) > 1 and len(words[-1]) == 2 and words[-1].isalpha():
        state = words.pop()
    return " ".join(words), state, zipcode


def _intersection(first: list[str], second: list[str]) -> ParsedAddress:
    a = parse_street(" ".join(first))
    b = parse_street(" ".join(second))
    if a is None or b is None:
        return ParsedAddress("none", reason=f"{' '.join(first + ['&'] + second)[:60]!r} does "
                                            "not read as two street names")
    return ParsedAddress("intersection", street=a, cross=b)


def _tag(text: str) -> dict[str, str]:
    """Usaddress labels -> text; the first run of a repeated label wins."""
    out: dict[str, str] = {}
    last = ""
    for token, label in label_tokens(text):
        token = token.strip(",")
        if not token:
            continue
        if label in out and label != last:
            continue
        out[label] = f"{out[label]} {token}" if label in out else token
        last = label
    # A lone street name usaddress read as a place or a recipient ("FULLERTON", "STATE").
    if "StreetName" not in out and "AddressNumber" not in out and "SecondStreetName" not in out:
        words = text.replace(",", " ").split()
        if 0 < len(words) <= 5:
            return _tag_street_words(words)
    return out


def _tag_street_words(words: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if len(words) > 1 and words[0] in DIRECTIONS:
        out["StreetNamePreDirectional"] = words.pop(0)
    if len(words) > 1 and words[-1] in STREET_TYPES:
        out["StreetNamePostType"] = words.pop()
    if words and all(w.replace("'", "").isalnum() for w in words):
        out["StreetName"] = " ".join(words)
    return out


def _street(parts: dict[str, str], prefix: str) -> Street | None:
    name = parts.get(f"{prefix}StreetName", "").strip()
    pre = parts.get(f"{prefix}StreetNamePreDirectional", "").replace(".", "")
    post_type = parts.get(f"{prefix}StreetNamePostType", "").replace(".", "")
    pre_type = parts.get(f"{prefix}StreetNamePreType", "")
    if prefix and name:
        # usaddress keeps a second street's directional inside its name ("N PULASKI").
        words = name.split()
        if len(words) > 1 and words[0] in DIRECTIONS and not pre:
            pre, name = words[0], " ".join(words[1:])
    if pre_type:
        name = f"{pre_type} {name}".strip()
    if not name:
        # "1234 W ST": the directional or type is the name.
        if post_type and pre and pre in DIRECTIONS:
            return None
        return None
    direction = DIRECTIONS.get(pre, "")
    if pre and not direction:
        name = f"{pre} {name}"
    suffix = STREET_TYPES.get(post_type, post_type)
    words = name.split()
    if len(words) > 1 and words[-1] in STREET_TYPES and not suffix:
        suffix = STREET_TYPES[words.pop()]
    name = " ".join(_ordinal(w) for w in words)
    if not any(c.isalnum() for c in name):
        return None
    return Street(direction, name, suffix)


def _ordinal(word: str) -> str:
    """71 -> 71ST, 2 -> 2ND; other words unchanged."""
    if not word.isdigit() or len(word) > 3:
        return word
    n = int(word)
    suffix = "TH" if 10 <= n % 100 <= 20 else _ORDINAL.get(n % 10, "TH")
    return f"{n}{suffix}"
