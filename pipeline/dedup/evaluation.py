"""Measuring near-duplicate detection against exact Jaccard similarity.

Used by the tests and ``benchmarks/dedup.py``:

* ``make_variant``: a variant of a real text by the edits seen on the web: boilerplate
  headers/footers (menus, dates, copyright lines), word substitutions, an inserted passage
  from another text, truncation. The edit strength is drawn at random, so the variant's
  exact Jaccard similarity to its base spans 0..1.
* ``similar_pairs``: every pair of documents with exact shingle-set Jaccard >= a floor,
  through an inverted index of shingles (no all-pairs loop over unrelated documents).
* ``pair_metrics``: precision and recall of the pairs a dedup put in one cluster against
  the pairs whose exact Jaccard is >= the threshold, next to the recall the LSH S-curve
  predicts for the same pairs (the chance that each becomes a candidate; verification then
  keeps exactly the candidates at or above the threshold).
* ``output_clusters``: the clusters of a finished dedup output (kept id + ids removed for it).
* ``generated_pages``: the evaluation set: every real text plus one variant.
"""
from __future__ import annotations

import hashlib
import math
import random
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations

from pipeline.dedup.minhash import _CJK, candidate_probability, jaccard, shingle_set

BOILERPLATE = [
    "Home | About | Contact | Privacy Policy | Terms of Use",
    "Skip to main content",
    "Posted on {date} by admin",
    "Last updated: {date}",
    "Copyright (c) {year} All rights reserved.",
    "Share this: Facebook Twitter Email Print",
    "Related posts",
    "Subscribe to our newsletter for weekly updates",
    "Leave a comment",
    "Categories: Uncategorized",
]


def _boilerplate(rng: random.Random, lines: int) -> list[str]:
    date = f"{rng.randint(2001, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return [rng.choice(BOILERPLATE).format(date=date, year=date[:4]) for _ in range(lines)]


_UNIT_RE = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


def _units(text: str) -> list[str]:
    """Words, and single CJK characters (Chinese has no spaces between words)."""
    return _UNIT_RE.findall(text)


def make_variant(base: str, other: str, rng: random.Random) -> tuple[str, str]:
    """``(variant, operation)``: one random web-style edit of ``base`` (``other`` feeds insertions)."""
    words = _units(base)
    op = rng.choices(["boilerplate", "edit", "insert", "truncate", "mixed"], weights=[3, 3, 2, 1, 2])[0]
    if op in ("boilerplate", "mixed"):
        header = _boilerplate(rng, rng.randint(1, 4))
        footer = _boilerplate(rng, rng.randint(0, 3))
        words = " ".join(header).split() + words + " ".join(footer).split()
    if op in ("edit", "mixed"):
        rate = rng.choice([0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3])
        vocab = _units(other) or ["x"]
        words = [rng.choice(vocab) if rng.random() < rate else w for w in words]
    if op == "insert":
        extra = _units(other)
        n = max(1, int(len(words) * rng.choice([0.05, 0.1, 0.25, 0.6, 1.0])))
        start = rng.randrange(max(1, len(extra) - n + 1))
        at = rng.randrange(len(words) + 1)
        words = words[:at] + extra[start:start + n] + words[at:]
    if op == "truncate":
        keep = rng.choice([0.3, 0.5, 0.7, 0.85, 0.95])
        words = words[: max(1, int(len(words) * keep))]
    return " ".join(words), op


def similar_pairs(texts: Mapping[str, str], shingle_size: int = 5, floor: float = 0.05,
                  max_df: int = 50) -> dict[tuple, float]:
    """``{(id_a, id_b): exact Jaccard}`` (``id_a < id_b``) for every pair with Jaccard >= ``floor``.

    Candidate pairs share a shingle held by at most ``max_df`` documents (a pair with Jaccard
    >= ``floor`` shares many shingles, nearly all of them rarer than boilerplate); the
    Jaccard of each candidate is then computed exactly from the two shingle sets.
    """
    sets = {k: shingle_set(t, shingle_size) for k, t in texts.items()}
    index: dict = defaultdict(list)
    for k, s in sets.items():
        for sh in s:
            index[sh].append(k)
    candidates = set()
    for ids in index.values():
        if 1 < len(ids) <= max_df:
            candidates.update(combinations(sorted(ids), 2))
    out = {}
    for a, b in candidates:
        j = jaccard(sets[a], sets[b])
        if j >= floor:
            out[(a, b)] = j
    return out


def output_clusters(output_dir: str) -> list[list[str]]:
    """The clusters a finished dedup output stands for: each kept id with the ids removed in its favour."""
    import glob
    import os

    import pyarrow.parquet as pq

    clusters: dict[str, list[str]] = defaultdict(list)
    for f in sorted(glob.glob(os.path.join(output_dir, "data", "*.parquet"))):
        for r in pq.read_table(f, columns=["id"]).to_pylist():
            clusters[r["id"]].append(r["id"])
    for r in pq.read_table(os.path.join(output_dir, "removed")).to_pylist():
        clusters[r["kept_id"]].append(r["id"])
    return list(clusters.values())


def cluster_pairs(clusters: Sequence[Sequence[str]]) -> set[tuple]:
    """All ``(a, b)`` pairs (``a < b``) inside the given clusters."""
    return {p for c in clusters for p in combinations(sorted(c), 2)}


def pair_metrics(predicted: set[tuple], similarities: Mapping[tuple, float], threshold: float,
                 bands: int, rows: int) -> dict:
    """Measured precision/recall of ``predicted`` pairs, and the recall the S-curve predicts.

    Truth: pairs with exact Jaccard >= ``threshold``. ``expected_recall`` assumes each true
    pair is found with the S-curve probability of its own similarity (no help from merging
    through third pages); ``recall_sd`` is the standard deviation of the recall under that
    model. ``below_threshold_linked`` counts predicted pairs under the threshold (merged
    through a chain of near-duplicates, since verified edges are all >= the threshold).
    """
    truth = {p for p, s in similarities.items() if s >= threshold}
    tp = len(predicted & truth)
    p_true = [float(candidate_probability(similarities[p], bands, rows)) for p in truth]
    var_tp = sum(p * (1 - p) for p in p_true)
    return {
        "pairs_true": len(truth),
        "pairs_predicted": len(predicted),
        "true_positives": tp,
        "precision": tp / len(predicted) if predicted else 1.0,
        "recall": tp / len(truth) if truth else 1.0,
        "expected_recall": sum(p_true) / len(truth) if truth else 1.0,
        "recall_sd": math.sqrt(var_tp) / len(truth) if truth else 0.0,
        "below_threshold_linked": sum(1 for p in predicted - truth if similarities.get(p, 0.0) < threshold),
    }


def generated_pages(bases: Sequence[str], seed: int = 1234) -> tuple[list[dict], dict[str, str]]:
    """``(rows, {id: text})``: every base text and one ``make_variant`` of it, each on its own URL.

    Rows have ``id`` (SHA-1 of URL and text), ``url``, ``fetch_time``, ``text``, ``num_chars``.
    """
    rng = random.Random(seed)
    rows, texts = [], {}
    for i, base in enumerate(bases):
        variant, _ = make_variant(base, bases[rng.randrange(len(bases))], rng)
        for j, text in ((2 * i, base), (2 * i + 1, variant)):
            url = f"https://site{j}.example/page"
            ident = hashlib.sha1(f"{url}\n{text}".encode()).hexdigest()
            rows.append({"id": ident, "url": url, "fetch_time": "2024-01-01T00:00:00Z", "text": text,
                         "num_chars": len(text)})
            texts[ident] = text
    return rows, texts
