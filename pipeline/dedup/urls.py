"""URL normalisation and the "newest fetch wins" rule of URL deduplication.

Two fetches are the same page when their normalised URLs are equal. Normalisation (built on
the standard library's RFC 3986 parser, ``urllib.parse``):

* scheme and host lower-cased; an IDN host in its ASCII (punycode) form; a trailing dot of
  the host dropped; the scheme's default port dropped (``:80`` for http, ``:443`` for https);
* an empty path becomes ``/``; ``.`` and ``..`` segments resolved; one trailing slash
  removed (``/a/`` == ``/a``, the root stays ``/``); percent-escapes upper-cased and
  unreserved characters (letters, digits, ``-._~``) decoded; ``;jsessionid=...`` path
  parameters removed;
* query: tracking and session parameters removed (``utm_*``, ``fbclid``, ``gclid``, ...,
  see ``TRACKING_PARAMS``), the remaining parameters sorted by name (stable, so repeated
  names keep their order), empty query dropped;
* fragment removed.

Not merged on purpose (different pages on some sites): ``http`` vs ``https``, ``www.`` vs no
``www.``, path case, parameters that are not in the tracking list. courlan (trafilatura's URL
library) was not used because its tracker pattern also drops any parameter *starting* with
``ga``, ``ref``, ``source``, ``uid``, ... (``?game=3``), which would merge distinct pages.

Which fetch is kept: the newest ``fetch_time``; ties broken by the smallest ``id``, then
``warc_path``, then ``warc_offset`` (a total order, so every runner picks the same row). A
missing or unparsable ``fetch_time`` ranks as the oldest.
"""
from __future__ import annotations

import posixpath
import re
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}

# Exact (lower-cased) names of tracking / session parameters; plus any name with a prefix below.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "igshid", "igsh", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id",
        "oly_enc_id", "vero_id", "vero_conv", "spm", "scm", "ref_src", "ref_url", "cmpid", "s_cid",
        "phpsessid", "jsessionid", "aspsessionid", "sessionid", "sid_ts", "zanpid", "trk", "trkcampaign",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "matomo_", "hsa_", "__hs", "ga_", "_openstat")

_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_PARAM_RE = re.compile(r";(?:jsessionid|phpsessid|sid)=[^/?#]*", re.IGNORECASE)


def is_tracking_param(name: str) -> bool:
    """True for query parameters that only track the visitor (removed by ``normalize_url``)."""
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def _normalize_escapes(part: str) -> str:
    """Upper-case percent-escapes and decode the ones of unreserved characters (RFC 3986 6.2.2)."""

    def fix(m: re.Match) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    return _PCT_RE.sub(fix, part)


def _normalize_host(host: str) -> str:
    host = host.lower().rstrip(".")
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # keep the lower-cased Unicode host: still a stable key
    return host


def _normalize_path(path: str) -> str:
    path = _normalize_escapes(_PATH_PARAM_RE.sub("", path))
    if not path:
        return "/"
    trailing = path.endswith("/")
    path = posixpath.normpath(path)
    if path.startswith("//"):  # posixpath keeps a leading "//"
        path = "/" + path.lstrip("/")
    if path == ".":
        path = "/"
    if trailing and path != "/":
        path += "/"
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def _normalize_query(query: str) -> str:
    if not query:
        return ""
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not is_tracking_param(k)]
    params.sort(key=lambda kv: kv[0])
    return urlencode(params, quote_via=quote, safe="")


def normalize_url(url: str) -> str:
    """The normalised form of ``url`` (see the module docstring).

    Raises ``ValueError`` when ``url`` is empty or has no scheme and host (not an absolute URL)
    or an invalid port.
    """
    if url is None or not str(url).strip():
        raise ValueError("empty URL")
    parts = urlsplit(str(url).strip())
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {url!r}")
    host = _normalize_host(parts.hostname or "")
    port = parts.port  # raises ValueError on a bad port
    netloc = host
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    if ":" in host:  # IPv6 literal
        netloc = netloc.replace(host, f"[{host}]")
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, _normalize_path(parts.path), _normalize_query(parts.query), ""))


def fetch_epoch(fetch_time: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 ``fetch_time`` (WARC-Date), None when missing or bad.

    A time without a zone is taken as UTC (WARC-Date is always UTC).
    """
    if not fetch_time:
        return None
    try:
        dt = datetime.fromisoformat(str(fetch_time).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def fetch_rank(row: dict) -> tuple:
    """The sort key of a fetch: the *smallest* rank wins URL deduplication.

    Newest ``fetch_time`` first (missing/bad times last), then smallest ``id``, ``warc_path``
    and ``warc_offset``: a total order on distinct rows.
    """
    epoch = fetch_epoch(row.get("fetch_time"))
    return (
        0 if epoch is not None else 1,
        -(epoch or 0.0),
        row.get("id") or "",
        row.get("warc_path") or "",
        row.get("warc_offset") if row.get("warc_offset") is not None else -1,
    )
