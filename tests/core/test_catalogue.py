"""The service catalogue file: checks, and the shipped Chicago catalogue against real data."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from geo311.catalogue import read_catalogue
from geo311.config import PROJECT_ROOT
from geo311.errors import InvalidRequest
from geo311.model import DATATYPES

SAMPLES = PROJECT_ROOT / "shapefiles" / "requests"


def write(tmp_path, text, name="cat.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_catalogue_has_every_service_type_of_the_2021_sample():
    with gzip.open(SAMPLES / "chicago_311_all_types_2021-01-01_to_02_sample.csv.gz") as fh:
        sample = pd.read_csv(fh, usecols=["sr_short_code", "sr_type", "owner_department"])
    pairs = sample.drop_duplicates("sr_short_code")
    services = {s.code: s for s in read_catalogue("chicago")}
    assert set(services) == set(pairs["sr_short_code"])
    for row in pairs.itertuples():
        assert services[row.sr_short_code].name == row.sr_type
        assert services[row.sr_short_code].agency == row.owner_department
    assert all(s.group for s in services.values())


def test_sanitation_question_lists_the_citys_violation_types():
    with gzip.open(SAMPLES / "chicago_311_sanitation_code_complaints_2011_2013.csv.gz") as fh:
        natures = set(pd.read_csv(fh, usecols=["What_is_the_Nature_of_this_Code_Violation"])
                      .iloc[:, 0].dropna())
    scb = next(s for s in read_catalogue("chicago") if s.code == "SCB")
    nature = scb.attributes[0]
    assert nature.datatype == "singlevaluelist" and nature.required
    assert {name for _, name in nature.values} == natures
    assert scb.duplicate_rule is not None and scb.duplicate_rule.window_days == 3


def test_shipped_catalogue_uses_every_datatype():
    used = {a.datatype for s in read_catalogue("chicago") for a in s.attributes}
    assert used == set(DATATYPES)


def test_json_catalogue_reads_like_toml(tmp_path):
    path = write(tmp_path, '{"services": [{"code": "PH", "name": "Pothole", "sla_days": 3,'
                 '"attributes": [{"code": "lane", "datatype": "singlevaluelist", "order": 1,'
                 '"description": "Lane?", "values": [{"key": "1", "name": "Curb"}]}]}]}',
                 "cat.json")
    (s,) = read_catalogue(path)
    assert s.sla_days == 3.0 and s.attributes[0].values == (("1", "Curb"),)


@pytest.mark.parametrize("body, message", [
    ('[[services]]\ncode = "A"\nname = "x"\ncolour = "red"', "unknown keys ['colour']"),
    ('[[services]]\ncode = "A B"\nname = "x"', "code 'A B'"),
    ('[[services]]\ncode = "A"\nname = ""', "has no name"),
    ('[[services]]\ncode = "A"\nname = "x"\nsla_days = -1', "sla_days"),
    ('[[services]]\ncode = "A"\nname = "x"\n[[services]]\ncode = "A"\nname = "y"',
     "appear more than once"),
    ('[[services]]\ncode = "A"\nname = "x"\n[[services.attributes]]\ncode = "q"\n'
     'datatype = "colour"\ndescription = "d"', "datatype was 'colour'"),
    ('[[services]]\ncode = "A"\nname = "x"\n[[services.attributes]]\ncode = "q"\n'
     'datatype = "singlevaluelist"\ndescription = "d"', "needs values"),
    ('[[services]]\ncode = "A"\nname = "x"\n[[services.attributes]]\ncode = "q"\n'
     'datatype = "string"\ndescription = "d"\nvalues = [{key = "a", name = "b"}]',
     "only list datatypes take values"),
    ('[[services]]\ncode = "A"\nname = "x"\n[[services.attributes]]\ncode = "q"\n'
     'datatype = "string"\ndescription = "d"\norder = 0', "positive integer"),
    ('[[services]]\ncode = "A"\nname = "x"\n[[services.attributes]]\ncode = "q"\n'
     'datatype = "string"\ndescription = "d"\n[[services.attributes]]\ncode = "r"\n'
     'datatype = "string"\ndescription = "e"', "orders must be unique"),
    ('[[services]]\ncode = "A"\nname = "x"\n[[services.attributes]]\ncode = "q"\n'
     'datatype = "text"\ndescription = "d"\nvariable = false\nrequired = true',
     "cannot be required"),
    ('[[services]]\ncode = "A"\nname = "x"\nduplicates = { radius_m = -5 }', "radius_m"),
    ('name = "empty"', "no [[services]]"),
    ('[[services]\n', "cannot be read"),
])
def test_bad_catalogue_is_refused_with_a_precise_message(tmp_path, body, message):
    with pytest.raises(InvalidRequest, match=message.replace("[", r"\[").replace("(", r"\(")):
        read_catalogue(write(tmp_path, body))


def test_unknown_catalogue_name_lists_the_shipped_ones():
    with pytest.raises(InvalidRequest, match="chicago"):
        read_catalogue("atlantis")


def test_readme_catalogue_example_loads(tmp_path):
    readme = (PROJECT_ROOT / "README.md").read_text()
    example = readme.split("A city's own file:\n\n```toml\n", 1)[1].split("```", 1)[0]
    (s,) = read_catalogue(write(tmp_path, example))
    assert s.code == "PH" and s.attributes[0].values[1] == ("bike", "Bike lane")
    assert s.duplicate_rule.radius_m == 25


def test_accepting_is_read_and_checked():
    from geo311.catalogue import parse_service, read_catalogue
    from geo311.errors import InvalidRequest

    shipped = {s.code: s for s in read_catalogue("chicago")}
    assert not shipped["SEF"].accepting and "NO LONGER" in shipped["SEF"].name
    assert all(s.accepting for s in shipped.values() if "NO LONGER" not in s.name)
    assert parse_service({"code": "X", "name": "x"}, "t").accepting is True
    try:
        parse_service({"code": "X", "name": "x", "accepting": "no"}, "t")
    except InvalidRequest as exc:
        assert "accepting was 'no'" in exc.message
    else:
        raise AssertionError("a text 'accepting' was taken")
