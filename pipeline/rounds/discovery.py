"""Math domains and URL paths: the paper's step 4, as pure functions.

Method (DeepSeekMath section 2.1): pages are grouped by domain ("same base URL"); a domain
where more than 10% of its pages were recalled is math-related. Here that share must be shown
with evidence: the domain needs at least ``DOMAIN_MIN_PAGES`` pages and the lower end of the
95% Wilson interval of its recalled share must exceed 10% (one recalled page out of one, or 3
out of 20 on a news site, is no evidence; 3 out of 3, or 30 out of 100, is). Within those domains the
paper picked the URL paths that hold math by hand (e.g. ``mathoverflow.net/questions``), and
added the pages under them that the classifier missed to the seed as new positives.

Here the path choice is proposed automatically and left editable:
- The candidate prefixes of a URL are its directories up to ``max_depth`` levels: for
  ``https://mathoverflow.net/questions/123/title`` and depth 2 they are ``/``,
  ``/questions/`` and ``/questions/123/`` (the last segment is the page, not a directory).
- Per (domain, prefix): pages, recalled pages, their tokens. A prefix is *accepted* when at
  least ``min_pages`` pages sit under it, the Wilson lower bound of their recalled share is at
  least ``min_share`` (so the root of a news site with a few math articles is never harvested
  whole), and no
  shorter prefix of the same domain is already accepted (the most general qualifying prefix
  wins, so ``/`` is accepted for a domain that is math throughout).
- Every candidate with at least ``min_pages`` pages in a math domain goes to ``paths.tsv``
  with its statistics and an ``accept`` column (1/0) that a person can flip, or add rows to;
  the next round reads the file back as it is.

The domain of a page is the pool's ``domain`` column (lower-cased host without ``www.`` and
port, as the extract stage writes it); the path prefix is matched on the URL's path as is
(case-sensitive, percent-encoding untouched).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.rounds.calibration import wilson_lower_bound

DOMAIN_MIN_SHARE = 0.10  # the paper: "more than 10% of its pages" (here: of the share's lower bound)
DOMAIN_MIN_PAGES = 3  # ours: evidence needs more than one page
PATH_MIN_SHARE = 0.3  # ours, on the lower bound of the share (the paper chose paths by hand)
PATH_MIN_PAGES = 5
PATH_MAX_DEPTH = 2

PATHS_COLUMNS = ["accept", "domain", "path_prefix", "pages", "recalled", "recall_share", "share_lower_bound", "missed",
                 "tokens", "recalled_tokens"]
DOMAINS_COLUMNS = ["domain", "math", "pages", "recalled", "recall_share", "share_lower_bound", "tokens",
                   "recalled_tokens"]


def url_path(url: str | None) -> str | None:
    """The path of ``url`` ("/" when empty); None when the URL cannot be parsed."""
    if not url:
        return None
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return None


def path_prefixes(url: str | None, max_depth: int = PATH_MAX_DEPTH) -> list[str]:
    """The directory prefixes of ``url``'s path, from ``/`` down to ``max_depth`` levels.

    >>> path_prefixes("https://mathoverflow.net/questions/123/title")
    ['/', '/questions/', '/questions/123/']
    >>> path_prefixes("https://example.org/a/b/", max_depth=5)
    ['/', '/a/', '/a/b/']
    """
    path = url_path(url)
    if path is None:
        return []
    segments = path.split("/")[1:]  # "/a/b/c" -> ["a", "b", "c"]; "/a/b/" -> ["a", "b", ""]
    directories = [s for s in segments[:-1] if s]
    prefixes = ["/"]
    for depth in range(1, min(max_depth, len(directories)) + 1):
        prefixes.append("/" + "/".join(directories[:depth]) + "/")
    return prefixes


@dataclass(frozen=True)
class RecallStats:
    """Pages and tokens of a group (a domain, or a path prefix in a domain), recalled or not."""

    pages: int = 0
    recalled: int = 0
    tokens: int = 0
    recalled_tokens: int = 0

    @property
    def share(self) -> float:
        """Share of the group's pages that were recalled."""
        return self.recalled / self.pages if self.pages else 0.0

    @property
    def share_lower_bound(self) -> float:
        """Lower end of the 95% Wilson interval of the recalled share: the evidence for the share."""
        return wilson_lower_bound(self.recalled, self.pages)

    @property
    def missed(self) -> int:
        return self.pages - self.recalled

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.pages, self.recalled, self.tokens, self.recalled_tokens)

    @classmethod
    def of_page(cls, recalled: bool, tokens: int) -> RecallStats:
        return cls(1, int(recalled), tokens, tokens if recalled else 0)


def add_stats(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Element-wise sum of two stats tuples (the combiner of the Beam aggregation)."""
    return tuple(x + y for x, y in zip(a, b))


def sum_stats(values: Iterable[tuple[int, ...]]) -> tuple[int, int, int, int]:
    total = (0, 0, 0, 0)
    for v in values:
        total = add_stats(total, v)
    return total


def is_math_domain(stats: RecallStats, min_share: float = DOMAIN_MIN_SHARE,
                   min_pages: int = DOMAIN_MIN_PAGES) -> bool:
    """The paper's rule with evidence: at least ``min_pages`` pages, and the lower bound of the
    recalled share's 95% Wilson interval above ``min_share``."""
    return stats.pages >= min_pages and stats.share_lower_bound > min_share


@dataclass(frozen=True)
class PathProposal:
    domain: str
    prefix: str
    stats: RecallStats
    accept: bool

    def row(self) -> list[str]:
        s = self.stats
        return [str(int(self.accept)), self.domain, self.prefix, str(s.pages), str(s.recalled), f"{s.share:.4f}",
                f"{s.share_lower_bound:.4f}", str(s.missed), str(s.tokens), str(s.recalled_tokens)]


def _depth(prefix: str) -> int:
    return prefix.strip("/").count("/") + 1 if prefix.strip("/") else 0


def propose_paths(path_stats: dict[tuple[str, str], RecallStats], min_share: float = PATH_MIN_SHARE,
                  min_pages: int = PATH_MIN_PAGES) -> list[PathProposal]:
    """Proposals for ``paths.tsv`` from per-(domain, prefix) statistics (see the module docstring),
    sorted by domain and prefix."""
    proposals = []
    accepted: dict[str, list[str]] = {}
    for (domain, prefix), stats in sorted(path_stats.items(), key=lambda kv: (kv[0][0], _depth(kv[0][1]), kv[0][1])):
        if stats.pages < min_pages:
            continue
        covered = any(prefix.startswith(p) for p in accepted.get(domain, []))
        accept = not covered and stats.share_lower_bound >= min_share
        if accept:
            accepted.setdefault(domain, []).append(prefix)
        proposals.append(PathProposal(domain, prefix, stats, accept))
    return sorted(proposals, key=lambda p: (p.domain, p.prefix))


def paths_tsv(proposals: Iterable[PathProposal]) -> str:
    """The editable ``paths.tsv`` text: a comment header, the column names, one row per proposal."""
    out = io.StringIO()
    out.write("# Path prefixes proposed within math domains. Set accept to 1 to use a prefix's pages as\n"
              "# positives in the next round, 0 to ignore it; rows may be added (accept, domain, path_prefix\n"
              "# suffice). The next round reads this file as it is.\n")
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(PATHS_COLUMNS)
    for p in proposals:
        writer.writerow(p.row())
    return out.getvalue()


def accepted_paths(tsv_text: str) -> list[tuple[str, str]]:
    """The ``(domain, path_prefix)`` rows with ``accept`` 1 of a (possibly hand-edited) paths.tsv.

    Comment lines (``#``) and blank lines are ignored; a prefix that does not start with ``/``
    gets one. Raises ``ValueError`` naming the line for a row that cannot be read.
    """
    lines = [line for line in tsv_text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return []
    reader = csv.DictReader(lines, delimiter="\t")
    missing = {"accept", "domain", "path_prefix"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"paths.tsv lacks the columns {sorted(missing)}")
    out = []
    for number, row in enumerate(reader, start=2):
        flag = (row.get("accept") or "").strip().lower()
        if flag not in ("0", "1", "true", "false", "yes", "no"):
            raise ValueError(f"paths.tsv row {number}: accept must be 1 or 0, got {row.get('accept')!r}")
        if flag in ("1", "true", "yes"):
            domain = (row.get("domain") or "").strip().lower()
            prefix = (row.get("path_prefix") or "").strip()
            if not domain or not prefix:
                raise ValueError(f"paths.tsv row {number}: domain and path_prefix are required")
            out.append((domain, prefix if prefix.startswith("/") else "/" + prefix))
    return sorted(set(out))


class PathMatcher:
    """Tells whether a page lies under one of the accepted (domain, path prefix) pairs."""

    def __init__(self, accepted: Iterable[tuple[str, str]]):
        self.by_domain: dict[str, tuple[str, ...]] = {}
        for domain, prefix in accepted:
            self.by_domain[domain] = tuple(sorted(set(self.by_domain.get(domain, ())) | {prefix}))

    @classmethod
    def of_cut(cls, cut: dict) -> "PathMatcher":
        """The annotated paths a calibrated cut names (``accepted_paths`` of ``tables/stats.json``)."""
        return cls(tuple(pair) for pair in cut.get("accepted_paths") or ())

    def __bool__(self) -> bool:
        return bool(self.by_domain)

    def matches(self, domain: str | None, url: str | None) -> bool:
        prefixes = self.by_domain.get(domain or "")
        if not prefixes:
            return False
        path = url_path(url)
        return path is not None and any(path.startswith(p) for p in prefixes)


def domains_tsv(domain_stats: dict[str, RecallStats], math_domains: set[str]) -> str:
    """The domain table (domains with at least one recalled page), most recalled first."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(DOMAINS_COLUMNS)
    for domain, s in sorted(domain_stats.items(), key=lambda kv: (-kv[1].recalled, -kv[1].share, kv[0])):
        writer.writerow([domain, int(domain in math_domains), s.pages, s.recalled, f"{s.share:.4f}",
                         f"{s.share_lower_bound:.4f}", s.tokens, s.recalled_tokens])
    return out.getvalue()
