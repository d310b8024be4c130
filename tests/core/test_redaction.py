"""Free-text redaction scored on labelled 311 snippets, and its tokens and edges."""

from __future__ import annotations

import json
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
