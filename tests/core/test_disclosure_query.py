"""Records-request files: read, checked, written back the same; bad input named."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo311.disclosure import RecordsQuery, make_query, parse_query, query_toml
from geo311.errors import InvalidRequest

FULL = """\
reference = "FOIA-2026-0142"
title = "Rats in ward 27"
requester = "A. Reporter"
received = 2026-11-30

[search]
services = ["SGA", "SCB"]
districts = ["wards_2015_2023:27", "community_areas:8"]
from = 2021-01-01
to = "2021-01-31"
status = "closed"
text = "rat"
ids = [12, 7, 12]
"""


def test_a_full_query_is_read_with_every_field():
    q = parse_query(FULL)
    assert q == RecordsQuery(
        reference="FOIA-2026-0142", received=date(2026, 11, 30), title="Rats in ward 27",
        requester="A. Reporter", services=("SCB", "SGA"),
        districts=(("community_areas", "8"), ("wards_2015_2023", "27")),
        start=date(2021, 1, 1), end=date(2021, 1, 31), status="closed", text="rat",
        ids=(7, 12))


def test_written_back_it_reads_the_same_and_is_written_the_same():
    q = parse_query(FULL)
    text = query_toml(q)
    assert parse_query(text) == q
    assert query_toml(parse_query(text)) == text


@given(st.text(max_size=60).filter(lambda s: not any(ord(c) < 32 or ord(c) == 127 for c in s)),
       st.text(max_size=60).filter(lambda s: not any(ord(c) < 32 or ord(c) == 127 for c in s)))
def test_any_text_survives_the_round_trip(title, text):
    q = make_query({"reference": "R-1", "received": "2026-11-30", "title": title, "text": text})
    assert parse_query(query_toml(q)) == q


@pytest.mark.parametrize(("text", "message"), [
    ('reference = "R"\nreceived = 2026-01-01\nrequestor = "x"', "unknown keys ['requestor']"),
    ('reference = "R"\nreceived = 2026-01-01\n[search]\nward = 3', "unknown keys ['search.ward']"),
    ('received = 2026-01-01', "reference is required"),
    ('reference = "R"', "received is required"),
    ('reference = "R"\nreceived = "30/11/2026"', "received was '30/11/2026' but is expected"),
    ('reference = "R"\nreceived = 2026-01-01\n[search]\nfrom = 2021-02-01\nto = 2021-01-01',
     "to was 2021-01-01 but is expected on or after from 2021-02-01"),
    ('reference = "R"\nreceived = 2026-01-01\n[search]\nstatus = "pending"',
     "status was 'pending' but is expected to be in"),
    ('reference = "R"\nreceived = 2026-01-01\n[search]\ndistricts = ["27"]',
     "district was '27' but is expected as LAYER:ID"),
    ('reference = "R"\nreceived = 2026-01-01\n[search]\nids = ["x1"]',
     "an id was 'x1' but is expected to be a request number"),
    ('reference = "R"\nreceived = 2026-01-01\n[search]\nservices = "SCB"\ntext = 5',
     "text was 5 but is expected to be text"),
    ('reference = "R\\u0000"\nreceived = 2026-01-01', "reference holds a control character"),
    ('reference = "R"\nreceived = 2026-01-01\nsearch = 3', "search is expected to be a table"),
    ('reference = "R"\nreceived = [', "is not valid TOML"),
])
def test_bad_input_is_refused_naming_what_arrived(text, message):
    with pytest.raises(InvalidRequest) as caught:
        parse_query(text)
    assert message in caught.value.message


def test_form_fields_are_text_separated_by_commas():
    q = make_query({"reference": " R-9 ", "received": "2026-11-30", "services": "SCB, PHF",
                    "districts": ["wards_2015_2023:3"], "ids": "#5, 3 3", "status": ""})
    assert (q.reference, q.services, q.ids, q.status) == ("R-9", ("PHF", "SCB"), (3, 5), None)
