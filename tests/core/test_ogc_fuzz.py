"""The OGC parameter parsers on any input: a value or an InvalidRequest, never another error."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo311.errors import InvalidRequest
from geo311.ogc import params as ogc_params
from tests.conftest import examples

settings.register_profile("ogc-core-fuzz", max_examples=examples(300), deadline=None)
CORE_FUZZ = settings.get_profile("ogc-core-fuzz")

REQ = ogc_params.Collection("requests", "Requests", "", "requests", None)
LAYER = ogc_params.Collection("wards", "Wards", "", "layer", None)
H3 = ogc_params.Collection("requests_h3_r8", "H3", "", "h3", None, h3_resolution=8)

_text = st.text(max_size=60)  # any code point, surrogates included
_digits = st.integers(1, 5000).map(lambda n: "9" * n)
_number = st.one_of(st.integers(-10**40, 10**40).map(str), st.floats().map(str), _digits,
                    _digits.map(lambda d: "-" + d), _text)
_offset = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_edges = st.sampled_from([datetime.min, datetime.max, datetime(1, 1, 1, 13, 59),
                          datetime(9999, 12, 31, 10, 1)])
_aware = st.builds(lambda d, tz: d.replace(tzinfo=tz), st.one_of(st.datetimes(), _edges), _offset)
_when = st.one_of(_aware.map(datetime.isoformat), st.sampled_from(["..", ""]), _text)


def _settles(parse, *args):
    """``parse(*args)``'s value, or None when it refused with InvalidRequest."""
    try:
        return parse(*args)
    except InvalidRequest as err:
        assert err.status == 400 and err.message
        assert len(err.message) < 1000  # long input is not echoed in full
        return None


@CORE_FUZZ
@given(text=st.one_of(_number, st.none()))
def test_limit_and_offset_never_raise_otherwise(text):
    limit = _settles(ogc_params.parse_limit, text)
    assert limit is None or 1 <= limit <= ogc_params.MAX_LIMIT
    offset = _settles(ogc_params.parse_offset, text)
    assert offset is None or 0 <= offset <= ogc_params.MAX_OFFSET
    if text is not None and text.isascii() and text.isdigit():  # digits only: never refused
        assert offset is not None and (text.strip("0") != "") == (limit is not None)


@CORE_FUZZ
@given(text=st.one_of(_text, st.lists(st.one_of(_number, st.floats(-200, 200).map(str)),
                                      max_size=7).map(",".join)),
       crs=st.one_of(st.none(), st.just(ogc_params.CRS84), _text))
def test_bbox_never_raises_otherwise(text, crs):
    box = _settles(ogc_params.parse_bbox, text, crs)
    if box is not None:
        minx, miny, maxx, maxy = box
        assert -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90
        parts = ogc_params.bbox_parts(box)
        assert all(p[0] <= p[2] for p in parts) and len(parts) == (1 if minx <= maxx else 2)


@CORE_FUZZ
@given(first=_when, second=st.one_of(st.none(), _when))
def test_datetime_never_raises_otherwise(first, second):
    text = first if second is None else f"{first}/{second}"
    parsed = _settles(ogc_params.parse_datetime, text)
    if parsed is None:
        return
    start, end = parsed
    assert start is None or start.tzinfo is not None
    assert (start is None or end is None or start <= end or parsed == ogc_params.NEVER)


@CORE_FUZZ
@given(when=_aware)
def test_instants_are_applied_exactly_or_outside_the_calendar(when):
    try:
        expected = when.astimezone(UTC)
    except OverflowError:
        expected = None
    got = ogc_params.parse_datetime(when.isoformat())
    assert got == (ogc_params.NEVER if expected is None else (expected, expected))
    open_end = ogc_params.parse_datetime(f"{when.isoformat()}/..")
    assert open_end == (ogc_params.NEVER if expected is None and when.year == 9999 else
                        (expected, None))


_names = st.one_of(st.sampled_from(["f", "limit", "offset", "bbox", "bbox-crs", "datetime",
                                    "status", "service_code"]), _text)
_values = st.one_of(_text, _number, _when)


@CORE_FUZZ
@given(args=st.dictionaries(_names, st.lists(_values, min_size=1, max_size=3), max_size=6),
       collection=st.sampled_from([REQ, LAYER, H3]))
def test_query_args_and_item_query_never_raise_otherwise(args, collection):
    flat = _settles(ogc_params.query_args, args, collection.params)
    if flat is None:
        assert (set(args) - set(collection.params)
                or any(len(v) > 1 for v in args.values()))
        return
    assert flat == {k: v[0] for k, v in args.items()}
    q = _settles(ogc_params.ItemQuery.from_args, flat, collection)
    if q is not None:
        assert 1 <= q.limit <= ogc_params.MAX_LIMIT and 0 <= q.offset <= ogc_params.MAX_OFFSET


@pytest.mark.parametrize("name", ["limit", "bbox", "datetime"])
def test_query_args_names_a_repeated_parameter(name):
    with pytest.raises(InvalidRequest, match=f"^{name} was given 2 times"):
        ogc_params.query_args({name: ["1", "2"]}, ("limit", "bbox", "datetime"))
