"""Catching the in-memory hotspot rows up: which requests an audit entry names, and the merge."""

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from geo311.hotspot_index import caught_up, named_requests


def test_named_requests_reads_own_and_group_ids_of_request_entries_only():
    entries = [
        {"entity": "request", "entity_id": "7", "detail": {"into": 3, "from": "2"}},
        {"entity": "request", "entity_id": "8", "detail": {"folded": [4, "5", None]}},
        {"entity": "service", "entity_id": "99", "detail": {"into": 100}},
        {"entity": "request", "entity_id": "", "detail": {}},
    ]
    assert named_requests(entries) == {2, 3, 4, 5, 7, 8}


def _frame(ids, cells):
    return pd.DataFrame({"id": np.array(ids, dtype=np.int64),
                         "cell": np.array(cells, dtype=np.int64)})


def test_changed_rows_are_replaced_in_place_and_new_ones_join_the_tail():
    bulk = _frame([1, 2, 3], [10, 20, 30])
    parts = [bulk, bulk[:0]]
    out = caught_up(parts, _frame([2, 9], [20, 5]), max_tail=10)
    assert out[0]["id"].tolist() == [1, 2, 3] and out[1]["id"].tolist() == [9]
    assert bulk["cell"].tolist() == [10, 20, 30]  # the old parts are never edited
    moved = caught_up(out, _frame([1], [40]), max_tail=10)
    assert moved[1].empty and moved[0]["cell"].is_monotonic_increasing  # re-sorted
    assert caught_up(parts, _frame([], []), max_tail=10) is parts


@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 9)), max_size=30),
       st.integers(0, 5))
def test_catching_up_equals_a_fresh_load(changes, max_tail):
    start = _frame(range(1, 21), [i % 7 for i in range(1, 21)]).sort_values(
        "cell", kind="stable", ignore_index=True)
    parts = [start, start[:0]]
    truth = dict(zip(start["id"], start["cell"], strict=True))
    for rid, cell in changes:
        parts = caught_up(parts, _frame([rid], [cell]), max_tail)
        truth[rid] = cell
    both = pd.concat(parts, ignore_index=True)
    assert dict(zip(both["id"], both["cell"], strict=True)) == truth
    assert both["id"].is_unique and parts[0]["cell"].is_monotonic_increasing
