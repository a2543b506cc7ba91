"""URL normalisation and the newest-fetch rule."""
from __future__ import annotations

import pytest

from pipeline.dedup.urls import fetch_epoch, fetch_rank, is_tracking_param, normalize_url


@pytest.mark.parametrize(
    "a, b",
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),  # scheme and host case
        ("http://example.com:80/a", "http://example.com/a"),  # default port
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com/a#section-2", "http://example.com/a"),  # fragment
        ("http://example.com/a/", "http://example.com/a"),  # trailing slash
        ("http://example.com", "http://example.com/"),  # empty path
        ("http://example.com/a?utm_source=tw&utm_medium=social&id=7", "http://example.com/a?id=7"),
        ("http://example.com/a?fbclid=XYZ", "http://example.com/a"),
        ("http://example.com/a?gclid=1&b=2&a=1", "http://example.com/a?a=1&b=2"),  # sorted params
        ("http://example.com/%7Euser/a%2fb", "http://example.com/~user/a%2Fb"),  # escapes
        ("http://example.com/x/./y/../z", "http://example.com/x/z"),  # dot segments
        ("http://example.com/p;jsessionid=ABC123?q=1", "http://example.com/p?q=1"),  # session id
        ("http://Example.com./a", "http://example.com/a"),  # trailing dot of the host
        ("http://bücher.de/a", "http://xn--bcher-kva.de/a"),  # IDN host
    ],
)
def test_equivalent_urls_normalise_equal(a, b):
    assert normalize_url(a) == normalize_url(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("http://example.com/a", "https://example.com/a"),  # scheme differs: kept apart
        ("http://example.com/a", "http://www.example.com/a"),
        ("http://example.com/A", "http://example.com/a"),  # path case matters
        ("http://example.com/a?game=3", "http://example.com/a?game=4"),  # not a tracker
        ("http://example.com/a?page=2", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com/a"),  # non-default port
    ],
)
def test_distinct_urls_stay_distinct(a, b):
    assert normalize_url(a) != normalize_url(b)


def test_normalised_url_is_a_fixpoint():
    u = normalize_url("HTTP://Ex.com:80/a/b/../c/?utm_campaign=x&z=1&a=%7e#f")
    assert normalize_url(u) == u


@pytest.mark.parametrize("bad", ["", "   ", "/relative/path", "mailto-no-scheme", "http://example.com:99999/"])
def test_unusable_urls_raise(bad):
    with pytest.raises(ValueError):
        normalize_url(bad)


def test_tracking_params():
    assert is_tracking_param("utm_source") and is_tracking_param("UTM_Campaign") and is_tracking_param("gclid")
    assert not is_tracking_param("game") and not is_tracking_param("ref") and not is_tracking_param("id")


def test_fetch_epoch_parses_warc_dates():
    assert fetch_epoch("1970-01-01T00:01:00Z") == 60.0
    assert fetch_epoch("1970-01-01T00:00:01.500Z") == 1.5  # WARC/1.1 fractional seconds
    assert fetch_epoch("1970-01-01T00:00:00") == 0.0  # no zone: UTC
    assert fetch_epoch("yesterday") is None and fetch_epoch(None) is None


def test_newest_fetch_ranks_first_and_ties_are_total():
    old = {"id": "a", "fetch_time": "2020-01-01T00:00:00Z"}
    new = {"id": "b", "fetch_time": "2021-01-01T00:00:00Z"}
    tie = {"id": "0", "fetch_time": "2021-01-01T00:00:00Z"}
    bad = {"id": "", "fetch_time": "not a date"}
    assert sorted([old, bad, new, tie], key=fetch_rank) == [tie, new, old, bad]
    # same id and time: the WARC location decides
    r1 = {"id": "x", "fetch_time": "2021-01-01T00:00:00Z", "warc_path": "b.warc", "warc_offset": 0}
    r2 = {**r1, "warc_path": "a.warc", "warc_offset": 9}
    assert min([r1, r2], key=fetch_rank) is r2
