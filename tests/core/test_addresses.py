"""Parsing and normalisation of addresses as residents type them."""

import gzip

import pytest
import usaddress

from geo311.geocoding.parsing import MAX_ADDRESS_CHARS, label_tokens, parse_address
from tests.conftest import LEGACY_CSV


@pytest.mark.parametrize("text, label", [
    ("6927 S JUSTINE ST", "6927 S JUSTINE ST"),
    ("6927 south justine street", "6927 S JUSTINE ST"),          # directional, suffix words
    ("6927 S. Justine St.", "6927 S JUSTINE ST"),
    ("1306 S CENTRAL PARK AV", "1306 S CENTRAL PARK AVE"),       # AV
    ("1306 S CENTRAL PARK AVENUE", "1306 S CENTRAL PARK AVE"),   # AVENUE
    ("100 W 71ST ST", "100 W 71ST ST"),                          # ordinal
    ("100 W 71 STREET", "100 W 71ST ST"),                        # bare number street
    ("100 W 72 PL", "100 W 72ND PL"),
    ("100 W 113 ST", "100 W 113TH ST"),
    ("4853 S WOOD", "4853 S WOOD"),                              # no suffix
    ("2430-2432 N CLARK ST", "2430 N CLARK ST"),                 # number range
    ("1234 1/2 W 71ST ST", "1234 1/2 W 71ST ST"),                # half address
    ("6927 S JUSTINE ST APT 2R", "6927 S JUSTINE ST"),           # unit designators dropped
    ("6927 S JUSTINE ST #2R", "6927 S JUSTINE ST"),
    ("2430 N Clark Street, Chicago, IL 60614", "2430 N CLARK ST"),
])
def test_addresses_are_normalised(text, label):
    parsed = parse_address(text)
    assert parsed.kind == "address", parsed.reason
    assert parsed.label == label


def test_parts_are_kept():
    parsed = parse_address("2430-2432 N Clark Street Apt 3, Chicago, IL 60614")
    assert (parsed.number, parsed.number_text) == (2430, "2430-2432")
    assert (parsed.street.pre_dir, parsed.street.name, parsed.street.suffix) == ("N", "CLARK", "ST")
    assert parsed.unit == "APT 3" and parsed.zipcode == "60614" and parsed.place == "CHICAGO"
    assert parse_address("1234 1/2 W 71ST ST").half


@pytest.mark.parametrize("text", [
    "W FULLERTON AVE & N PULASKI RD", "w fullerton ave and n pulaski rd",
    "W Fullerton Av at N Pulaski Road", "W FULLERTON AVE / N PULASKI RD",
])
def test_intersections(text):
    parsed = parse_address(text)
    assert parsed.kind == "intersection"
    assert parsed.label == "W FULLERTON AVE & N PULASKI RD"


def test_intersection_of_bare_names():
    parsed = parse_address("Fullerton and Pulaski")
    assert parsed.kind == "intersection"
    assert (parsed.street.name, parsed.cross.name) == ("FULLERTON", "PULASKI")


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("   ", "empty"),
    ("x" * 10_000, f"at most {MAX_ADDRESS_CHARS}"),
    ("北京路 12号", "characters"),
    ("99999999 S WOOD ST", "larger than any city uses"),
    ("1234 S", "no street name"),
    ("12345", "is a number"),
    (None, "expected to be text"),
])
def test_bad_input_gets_a_reason(text, words):
    parsed = parse_address(text)
    assert parsed.kind == "none"
    assert words in parsed.reason


def test_accents_fold_to_ascii():
    assert parse_address("1200 W Peñasco Ave").label == "1200 W PENASCO AVE"


def test_label_tokens_agree_with_usaddress_on_real_addresses():
    with gzip.open(LEGACY_CSV, "rt", encoding="utf-8") as fh:
        next(fh)
        addresses = [line.split(",")[6] for _, line in zip(range(2000), fh, strict=False)]
    assert all(label_tokens(a) == usaddress.parse(a) for a in addresses)
