"""'Same problem: add my report to #N' on the report form joins that group, and only a group offered."""

import pytest

from tests.web.conftest import AUSTIN, LOOP

pytestmark = pytest.mark.both_backends


def _report(client, at, **form):
    return client.post("/report", data={"service_code": "SDR", "lat": str(at[1]),
                                        "long": str(at[0]), **form})


def test_the_chosen_nearby_group_is_joined_and_a_far_or_bad_one_refused(client, city):
    near = city.report(at=LOOP)
    other = city.report(at=(LOOP[0] + 0.0015, LOOP[1]))  # 125 m east: its own group
    assert other.duplicate_of is None
    far = city.report(at=AUSTIN)
    # 100 m from both: the duplicate rule would pick one; the resident picks the other.
    here = (LOOP[0] + 0.0008, LOOP[1] + 0.0004)
    for choice in (near.id, other.id):
        made = _report(client, here, join_group=str(choice))
        assert made.status_code == 200, made.get_data(as_text=True)
        assert city.store.requests.get(choice).reporter_count == 2
    count = city.store.requests.count()
    for bad, said in ((far.id, "within 250 m"), ("7; DROP TABLE", "request number"),
                      (999999, "within 250 m")):
        refused = _report(client, here, join_group=str(bad))
        assert refused.status_code == 400 and said in refused.get_data(as_text=True)
    assert city.store.requests.count() == count
    plain = _report(client, AUSTIN, join_group="")
    assert plain.status_code == 200
