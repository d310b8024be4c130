"""Address search endpoints and the geocoding commands, on both backends."""

import pandas as pd

from geo311_web.cli import cli
from tests.references import INTERSECTIONS, TIGER, load_subset, subset


def test_geocode_endpoint(app, client):
    load_subset(app.extensions["geo311"].store)
    found = client.get("/api/geocode?q=3415 w diversey avenue").get_json()
    assert found["match"] == "exact" and found["score"] == 1.0
    assert abs(found["lat"] - 41.931853) < 1e-6 and abs(found["long"] + 87.712901) < 1e-6
    assert found["address"] == "3415 W DIVERSEY AVE" and found["reason"] == ""
    missing = client.get("/api/geocode", query_string={"q": "hello world"}).get_json()
    assert missing["match"] == "none" and missing["lat"] is None
    assert "no street named" in missing["reason"]
    hostile = client.get("/api/geocode", query_string={"q": "<script>alert(1)</script>"})
    assert hostile.status_code == 200 and hostile.mimetype == "application/json"


def test_geocode_endpoint_sees_new_references(app, client):
    assert client.get("/api/geocode?q=3415 W DIVERSEY AVE").get_json()["match"] == "none"
    load_subset(app.extensions["geo311"].store)
    assert client.get("/api/geocode?q=3415 W DIVERSEY AVE").get_json()["match"] == "exact"


def test_geocode_errors_are_json(app, client):
    for url in ("/api/geocode", "/api/geocode?q=", "/api/geocode/suggest?q=x&limit=0",
                "/api/geocode/suggest?q=x&limit=abc", "/api/geocode/suggest",
                "/api/geocode/reverse?lat=x&long=1"):
        r = client.get(url)
        assert r.status_code == 400, url
        body = r.get_json()
        assert body[0]["code"] == 400 and body[0]["description"], url


def test_suggest_endpoint(app, client):
    load_subset(app.extensions["geo311"].store)
    found = client.get("/api/geocode/suggest?q=3415 w divers&limit=3").get_json()
    assert 1 <= len(found) <= 3
    assert found[0]["address"] == "3415 W DIVERSEY AVE"
    assert set(found[0]) == {"address", "lat", "long", "match", "score"}
    assert client.get("/api/geocode/suggest?q=zzzzqqqq").get_json() == []
    long_q = client.get("/api/geocode/suggest", query_string={"q": "x" * 10_000})
    assert long_q.status_code == 200 and long_q.get_json() == []


def test_reverse_endpoint(app, client):
    load_subset(app.extensions["geo311"].store)
    r = client.get("/api/geocode/reverse?lat=41.931853&long=-87.712901").get_json()
    assert r["address"] == "3415 W DIVERSEY AVE" and r["address_distance_m"] < 1
    assert r["street"]


def test_addresses_commands(runner, tmp_path):
    points = subset()["points"]
    source = tmp_path / "points.csv"
    points[["address", "zipcode", "lon", "lat"]].to_csv(source, index=False)
    out = runner.invoke(cli, ["addresses", "load", str(source)])
    assert out.exit_code == 0, out.output
    assert f"loaded {len(points)} points" in out.output
    split = tmp_path / "split.csv"
    pd.DataFrame({"NUM": points["house_number"], "STREET": points["pre_dir"] + " "
                  + points["street_name"] + " " + points["suffix"], "X": points["lon"],
                  "Y": points["lat"]}).to_csv(split, index=False)
    out = runner.invoke(cli, ["addresses", "load", str(split), "--number-column", "NUM",
                              "--street-column", "STREET", "--lon-column", "X",
                              "--lat-column", "Y", "--source", "split"])
    assert out.exit_code == 0 and f"loaded {len(points)} points" in out.output, out.output
    out = runner.invoke(cli, ["addresses", "load", str(INTERSECTIONS)])
    assert out.exit_code == 0 and "intersections" in out.output, out.output
    out = runner.invoke(cli, ["addresses", "load", str(TIGER), "--kind", "centerlines"])
    assert out.exit_code == 0 and "loaded 3 centerlines" in out.output, out.output
    listing = runner.invoke(cli, ["addresses", "list"]).output
    assert "split" in listing and "points.csv" in listing and TIGER.name in listing
    bad = runner.invoke(cli, ["addresses", "load", str(split), "--address-column", "NOPE"])
    assert bad.exit_code == 1 and "'NOPE'" in bad.output and "Traceback" not in bad.output
    learned = runner.invoke(cli, ["addresses", "learn"])
    assert learned.exit_code == 0 and "learned 0 address points" in learned.output


def test_geocode_command_keeps_every_column(runner, app, tmp_path):
    load_subset(app.extensions["geo311"].store)
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2, 3], "where": ["3415 W DIVERSEY AVE", "hello world",
                                              "W FULLERTON AVE & N PULASKI RD"],
                  "note": ["a", "b", "c"]}).to_csv(src, index=False)
    out = runner.invoke(cli, ["geocode", str(src), "--address-column", "where", "--output",
                              str(tmp_path / "out.csv")])
    assert out.exit_code == 0, out.output
    result = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(result.columns) == ["id", "where", "note", "lat", "long", "geocode_match",
                                    "geocode_score", "geocode_reason"]
    assert list(result["geocode_match"]) == ["exact", "none", "intersection"]
    assert result["geocode_reason"][1] and result["lat"][1] == ""
    bad = runner.invoke(cli, ["geocode", str(src), "--address-column", "nope", "--output",
                              str(tmp_path / "x.csv")])
    assert bad.exit_code == 1 and "'nope'" in bad.output
