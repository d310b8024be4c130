"""Free-text redaction scored on labelled 311 snippets, and its tokens and edges."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from geo311.redaction import (
    EMAIL_TOKEN,
    NUMBER_TOKEN,
    PHONE_TOKEN,
    find_identifiers,
    luhn_valid,
    redact_text,
)

SNIPPETS = Path(__file__).resolve().parent.parent / "data" / "redaction_snippets.jsonl"


def load_snippets() -> list[dict]:
    return [json.loads(line) for line in SNIPPETS.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def score(snippets: list[dict]) -> dict[str, float]:
    """Recall over labelled identifiers, false positives over negatives and extra findings."""
    identifiers = masked = negatives = changed = findings = stray = 0
    for s in snippets:
        text, spans = s["text"], s["spans"]
        found = find_identifiers(text)
        covered = set()
        for f in found:
            covered.update(range(f.start, f.end))
        for start, end, _label in spans:
            identifiers += 1
            masked += all(i in covered for i in range(start, end) if not text[i].isspace())
        findings += len(found)
        stray += sum(1 for f in found
                     if not any(f.start < end and start < f.end for start, end, _ in spans))
        if not spans:
            negatives += 1
            changed += redact_text(text) != text
    return {"identifiers": identifiers, "recall": masked / identifiers,
            "negatives": negatives, "fp_rate": changed / negatives,
            "findings": findings, "stray_rate": stray / max(findings, 1)}


def test_labelled_snippets_are_enough_and_varied():
    snippets = load_snippets()
    labels = [label for s in snippets for *_, label in s["spans"]]
    assert len(snippets) >= 200
    assert sum(1 for s in snippets if not s["spans"]) >= 60
    assert {"phone", "email", "ssn", "card"} <= set(labels)
    for s in snippets:  # spans point at real text: no off-by-one in the labels themselves
        for start, end, _label in s["spans"]:
            assert s["text"][start:end].strip() == s["text"][start:end]


def test_recall_and_false_positive_rate_on_labelled_snippets():
    figures = score(load_snippets())
    misses = [(s["text"], redact_text(s["text"])) for s in load_snippets()
              if s["spans"] and any(s["text"][a:b] in redact_text(s["text"])
                                    for a, b, _ in s["spans"])]
    wrongly = [(s["text"], redact_text(s["text"])) for s in load_snippets()
               if not s["spans"] and redact_text(s["text"]) != s["text"]]
    assert figures["recall"] >= 0.98, misses
    assert figures["fp_rate"] <= 0.02, wrongly
    assert figures["stray_rate"] <= 0.02


def test_every_labelled_identifier_is_gone_from_the_redacted_text():
    """The independent check: the identifier's own text no longer appears."""
    leaked = []
    for s in load_snippets():
        out = redact_text(s["text"])
        leaked += [s["text"][a:b] for a, b, _ in s["spans"] if s["text"][a:b] in out]
    assert len(leaked) <= 0.02 * sum(len(s["spans"]) for s in load_snippets()), leaked


def test_issue_example_gets_visible_tokens():
    text = "call me at 312-555-0199 or maria.lopez@example.com"
    assert redact_text(text) == f"call me at {PHONE_TOKEN} or {EMAIL_TOKEN}"


@pytest.mark.parametrize("text", [
    "SR21-00123456", "SR 21-00123456", "#12345", "1200 W 35TH ST", "4800 N ELSTON AVE",
    "60609-1234", "2026-12-06T23:54:51.679249+00:00", "$1,250.00", "10:40", "ward 11",
    "Request 7 is a duplicate of 3", "",
])
def test_identifiers_of_the_city_itself_stay(text):
    assert redact_text(text) == text


def test_ssn_and_card_numbers_are_masked_only_when_card_like():
    assert redact_text("ssn 123-45-6789") == f"ssn {NUMBER_TOKEN}"
    assert redact_text("card 4111 1111 1111 1111") == f"card {NUMBER_TOKEN}"
    assert redact_text("card 4111 1111 1111 1112") == "card 4111 1111 1111 1112"  # fails Luhn
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


def test_redaction_is_idempotent_and_keeps_the_rest_of_the_text():
    text = "Pothole at 1200 W 35TH ST, call (312) 555-0199 x12 after 5 pm"
    once = redact_text(text)
    assert once == f"Pothole at 1200 W 35TH ST, call {PHONE_TOKEN} after 5 pm"
    assert redact_text(once) == once


# --- generated variants: beyond the handwritten snippets ------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

US_FORMATS = ["{a}-{e}-{l}", "({a}) {e}-{l}", "{a}.{e}.{l}", "{a} {e} {l}", "{a}{e}{l}",
              "+1 {a} {e} {l}", "1-{a}-{e}-{l}", "+1 ({a}) {e}-{l}", "({a}){e}-{l}",
              "{a}-{e}-{l} ext. 12", "{a}.{e}.{l} x4", "+1{a}{e}{l}", "{a}/{e}-{l}"]
SENTENCES = ["call me at {x}", "{x} is my cell", "Pothole at 1200 W 35TH ST. Phone: {x}.",
             "reach the owner ({x}) about the cart", "Llame al {x}, gracias", "tel {x}; SR21-00123456"]
STREETS = ["W 35TH ST", "N ELSTON AVE", "S HALSTED ST", "N MILWAUKEE AVE", "E 63RD ST"]


@given(area=st.integers(200, 999), exchange=st.integers(200, 999), line=st.integers(0, 9999),
       fmt=st.sampled_from(US_FORMATS), sentence=st.sampled_from(SENTENCES))
def test_any_north_american_number_in_any_usual_writing_is_masked(area, exchange, line, fmt,
                                                                  sentence):
    number = fmt.format(a=area, e=exchange, l=f"{line:04d}")
    out = redact_text(sentence.format(x=number))
    assert out == sentence.format(x=PHONE_TOKEN)


@given(user=st.from_regex(r"[a-z][a-z0-9._-]{0,15}[a-z0-9]", fullmatch=True),
       domain=st.from_regex(r"[a-z][a-z0-9-]{1,12}", fullmatch=True),
       tld=st.sampled_from(["com", "org", "net", "edu", "pl", "cn", "gov", "us"]),
       spelled=st.booleans())
def test_any_email_plain_or_spelled_out_is_masked(user, domain, tld, spelled):
    address = (f"{user} at {domain} dot {tld}" if spelled else f"{user}@{domain}.{tld}")
    out = redact_text(f"Broken light at 4800 N ELSTON AVE, write to {address} please")
    assert out == f"Broken light at 4800 N ELSTON AVE, write to {EMAIL_TOKEN} please"


@given(number=st.integers(1, 13999), street=st.sampled_from(STREETS),
       zipcode=st.integers(60601, 60666), plus4=st.integers(0, 9999),
       year=st.integers(0, 99), sr=st.integers(0, 99_999_999), ticket=st.integers(1, 9_999_999),
       day=st.dates(date(1900, 1, 1), date(2100, 12, 31)), count=st.integers(1, 500))
def test_addresses_request_numbers_dates_and_counts_are_never_masked(
        number, street, zipcode, plus4, year, sr, ticket, day, count):
    text = (f"{count} potholes at {number} {street} {zipcode}-{plus4:04d}, "
            f"SR{year:02d}-{sr:08d}, SR {year:02d}-{sr:08d}, #{ticket}, request {ticket}, "
            f"since {day.isoformat()} ({day:%m/%d/%Y}) 10:40, ward {count % 50 + 1}, "
            f"${count},{number % 1000:03d}.50")
    assert redact_text(text) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs"),
                                      blacklist_characters="@"), max_size=200))
def test_text_without_digits_or_at_signs_is_left_alone_unless_spelled_out(text):
    if " at " in f" {text.lower()} " or "(at)" in text.lower() or "[at]" in text.lower():
        return
    assert redact_text(text) == text
