"""MinHash signatures and LSH banding for near-duplicate detection, vectorised with numpy.

Method
------
* **Text -> tokens.** NFKC, lower-cased; a token is a run of letters/digits (``\\w+``), one
  CJK character (Chinese/Japanese text has no spaces, so each Han/Kana/Hangul character is a
  token), or one other non-space symbol (``+``, ``=``, ``^``, ``\\``, ...: formulas count).
* **Shingles.** Every run of ``shingle_size`` (default 5) consecutive tokens, as the UTF-8
  bytes of the tokens joined by one space. A text with fewer than ``shingle_size`` tokens
  has one shingle (all its tokens), so very short texts only match texts with the same
  tokens; a text with no token has no shingle and no signature (it is never a near-duplicate).
* **Shingle hash: from token hashes, vectorised.** Each distinct token is hashed once per
  worker (8 bytes of BLAKE2b, memoised in a bounded table); a shingle's 64-bit hash is the sum of
  its tokens' hashes times a fixed odd multiplier per position (mod 2^64, so order matters),
  mixed by MurmurHash3's 64-bit finaliser, of which the top 32 bits are kept. It is a function of
  the shingle's bytes alone (``shingle_hash32``), deterministic across processes and machines,
  and computed for all shingles of a page with a few numpy operations instead of one SHA-1 per
  shingle (the cost that dominated the dedup stage).
* **Permutations = datasketch's.** The hash is pre-mixed with the MurmurHash3 32-bit finaliser,
  then permuted by ``a_k * h + b_k mod 2^32`` (``a_k`` odd, drawn from
  ``numpy.random.RandomState(seed)`` exactly as datasketch >= 2.0 draws them: its default
  ``affine32`` scheme). The signature is the per-permutation minimum. Our signatures are
  therefore *identical* to ``datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash32)``
  updated with the same shingles (tested), only computed for a batch of documents at once: a
  (shingles x permutations) uint32 matrix per chunk and a segmented minimum
  (``numpy.minimum.reduceat``). Memory is bounded by ``chunk_shingles`` rows, whatever the
  document length.
* **LSH for candidates, exact Jaccard for the decision.** The signature is cut into
  ``bands`` bands of ``rows`` values; two documents are *candidates* when at least one band
  is equal, with probability ``1 - (1 - s**rows) ** bands`` for Jaccard ``s`` (the S-curve).
  The bands are chosen for recall at the decision ``threshold`` (default 0.7):
  ``candidate_bands_rows`` takes the most rows (fewest low-similarity candidates) whose
  S-curve still gives >= 0.999 at the threshold: 32 bands x 4 rows for 0.7 and 128
  permutations (S-curve: s=0.5 -> 0.873, 0.6 -> 0.985, 0.7 -> 0.9998, 0.8 -> 1.000). Every
  candidate edge is then verified with the exact Jaccard of the two shingle sets
  (``verify.py``), so the S-curve bounds recall only and precision is exact. Band keys are the
  band index plus the band's raw bytes (no second hash, so no extra collisions).

Departures from the paper
-------------------------
The paper says only "near-duplicate removal"; shingle size, permutations and bands are our
choice (FineWeb uses 5-grams and 14 x 8 bands without verification; we band for recall and
verify every candidate exactly, see ``verify.py``).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import accumulate

import numpy as np

from pipeline.unicode_scripts import UNSEGMENTED_RANGES

MAX_HASH32 = np.uint32(0xFFFFFFFF)

MASK64 = (1 << 64) - 1
# One odd 64-bit multiplier per position in a shingle (from a fixed seed: part of the hash's definition).
_POSITION_MULTIPLIERS = np.random.RandomState(20240205).randint(0, 1 << 62, 64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_TOKEN_HASHES: dict[str, int] = {}
_TOKEN_CACHE_LIMIT = 1 << 20  # distinct tokens memoised per worker (about 100 MB at most)

# A token: one CJK character, a run of word characters, or one other non-space symbol.
_CJK = UNSEGMENTED_RANGES  # one token per character of a script written without spaces
TOKEN_RE = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])\w)+|[^\w\s]")
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_CJK_RE = re.compile(rf"[{_CJK}]")


@dataclass(frozen=True)
class MinHashConfig:
    """MinHash + LSH parameters (validated on construction).

    ``threshold`` is the exact shingle Jaccard from which two pages are near-duplicates
    (candidate edges below it are dropped). ``bands * rows`` must not exceed ``num_perm``;
    the permutations past ``bands * rows`` are computed but unused by LSH. The defaults are
    ``candidate_bands_rows(0.7, 128)``; ``MinHashConfig.for_threshold`` derives them for
    other thresholds.
    """

    shingle_size: int = 5
    num_perm: int = 128
    bands: int = 32
    rows: int = 4
    seed: int = 1
    threshold: float = 0.7
    # rows of the (shingles x permutations) matrix computed at once: 2048 x 128 x 4 bytes = 1 MiB stays in
    # a core's L2 cache (8192 rows: 4 MiB, and signatures took 4x as long on this CI machine)
    chunk_shingles: int = 2048
    fingerprint_hashes: int = 512  # verification sketch: a page's smallest distinct shingle hashes (0: all)

    def __post_init__(self) -> None:
        if self.shingle_size < 1:
            raise ValueError(f"shingle_size must be >= 1, got {self.shingle_size}")
        if self.shingle_size > len(_POSITION_MULTIPLIERS):
            raise ValueError(f"shingle_size must be <= {len(_POSITION_MULTIPLIERS)}, got {self.shingle_size}")
        if self.num_perm < 1 or self.bands < 1 or self.rows < 1:
            raise ValueError("num_perm, bands and rows must be >= 1")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if self.bands > 255:
            raise ValueError("at most 255 bands (the band index is one byte of the bucket key)")
        if self.fingerprint_hashes < 0:
            raise ValueError(f"fingerprint_hashes must be >= 0 (0: every shingle), got {self.fingerprint_hashes}")
        if self.chunk_shingles < 1:
            raise ValueError("chunk_shingles must be >= 1")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")

    @classmethod
    def for_threshold(cls, threshold: float = 0.7, num_perm: int = 128, bands: int | None = None,
                      rows: int | None = None, **kwargs) -> MinHashConfig:
        """A config for ``threshold``: bands and rows from ``candidate_bands_rows`` unless given."""
        if bands is None or rows is None:
            b, r = candidate_bands_rows(threshold, num_perm)
            bands = b if bands is None else bands
            rows = r if rows is None else rows
        return cls(num_perm=num_perm, bands=bands, rows=rows, threshold=threshold, **kwargs)

    @property
    def candidate_recall(self) -> float:
        """The S-curve at ``threshold``: the least probability that a true pair becomes a candidate."""
        return float(candidate_probability(self.threshold, self.bands, self.rows))

    def to_dict(self) -> dict:
        return {**asdict(self), "lsh_midpoint": round(lsh_threshold(self.bands, self.rows), 4),
                "candidate_recall_at_threshold": round(self.candidate_recall, 5)}


def lsh_threshold(bands: int, rows: int) -> float:
    """The usual LSH threshold approximation ``(1/bands)**(1/rows)``."""
    return (1.0 / bands) ** (1.0 / rows)


def candidate_probability(s: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """The LSH S-curve: probability that a pair of Jaccard ``s`` shares at least one band."""
    return 1.0 - (1.0 - np.power(s, rows)) ** bands


def s_curve_table(bands: int, rows: int,
                  points: Sequence[float] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)) -> dict:
    """``{similarity: candidate probability}`` at a few points, for summaries and docs."""
    return {f"{s:.2f}": round(float(candidate_probability(s, bands, rows)), 4) for s in points}


def optimal_bands_rows(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5,
                       grid: int = 2001) -> tuple[int, int]:
    """(bands, rows) with ``bands * rows <= num_perm`` minimising the weighted areas under the
    S-curve below ``threshold`` (false positives) and above it (false negatives); the same
    criterion as datasketch's ``MinHashLSH`` parameter choice, integrated numerically."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    lo = np.linspace(0.0, threshold, grid)
    hi = np.linspace(threshold, 1.0, grid)
    best, best_err = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(candidate_probability(lo, b, r), lo)
            fn = np.trapezoid(1.0 - candidate_probability(hi, b, r), hi)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err - 1e-15:
                best, best_err = (b, r), err
    return best


def candidate_bands_rows(threshold: float, num_perm: int, min_recall: float = 0.999) -> tuple[int, int]:
    """(bands, rows) for candidate generation before exact verification.

    The largest ``rows`` (fewest candidates below the threshold, so the least verification
    work) such that ``bands = num_perm // rows`` bands give a candidate probability of at
    least ``min_recall`` at ``threshold``; 0.7 and 128 permutations give (32, 4).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    for rows in range(num_perm, 0, -1):
        bands = min(num_perm // rows, 255)
        if candidate_probability(threshold, bands, rows) >= min_recall:
            return bands, rows
    raise ValueError(f"no banding of {num_perm} permutations reaches recall {min_recall} at {threshold}; "
                     "use more permutations")


def tokenize(text: str | None) -> list[str]:
    """The tokens of ``text`` after NFKC and lower-casing (see the module docstring)."""
    if not text:
        return []
    text = unicodedata.normalize("NFKC", text).lower()
    if _CJK_RE.search(text) is None:  # fast path: no CJK, plain words and symbols
        return _WORD_RE.findall(text)
    return TOKEN_RE.findall(text)


def shingles(text: str | None, shingle_size: int = 5) -> list[bytes]:
    """The shingles of ``text`` (with repetitions, in order) as UTF-8 bytes.

    Shingle ``i`` is ``" ".join(tokens[i:i + shingle_size]).encode()``. Fewer tokens than
    ``shingle_size`` give one shingle of all tokens; no token gives none.
    """
    toks = tokenize(text)
    if not toks:
        return []
    if len(toks) <= shingle_size:
        return [" ".join(toks).encode("utf-8")]
    # Slice the joined bytes instead of joining each shingle: shingle i spans tokens i..i+n-1.
    joined_str = " ".join(toks)
    joined = joined_str.encode("utf-8")
    lengths = map(len, toks) if len(joined) == len(joined_str) else (len(t.encode("utf-8")) for t in toks)
    starts = list(accumulate((n + 1 for n in lengths), initial=0))
    n = shingle_size
    return [joined[a:b - 1] for a, b in zip(starts[: len(toks) - n + 1], starts[n:])]


def shingle_set(text: str | None, shingle_size: int = 5) -> set[bytes]:
    return set(shingles(text, shingle_size))


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity of two sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``(a, b)`` uint32 arrays of datasketch's ``affine32`` permutations for ``seed``."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (a bijection), element-wise with uint32 wraparound."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def shingle_fingerprint(hashes: np.ndarray, max_hashes: int = 0) -> bytes:
    """A page's shingle-hash set as sorted unique little-endian uint32 bytes: all of it, or with
    ``max_hashes`` > 0 its ``max_hashes`` smallest hashes (a bottom-k sketch: the hashes are
    uniform, so the smallest are a uniform sample of the shingles), so that no fingerprint is
    larger than ``4 * max_hashes`` bytes however long the page.

    Hash collisions: two pages of ``m`` and ``n`` shingles share about ``m * n / 2**32`` spurious
    hashes (0.00002 for 300-shingle pages), negligible against any threshold.
    """
    unique = np.unique(np.asarray(hashes, dtype=np.uint32))
    if max_hashes > 0:
        unique = unique[:max_hashes]
    return unique.astype("<u4").tobytes()


def fingerprint_jaccard(a: bytes, b: bytes, max_hashes: int = 0) -> float:
    """Jaccard similarity of two ``shingle_fingerprint`` sets made with the same ``max_hashes``
    (1.0 for two empty sets).

    Exact when neither fingerprint was cut (``max_hashes`` = 0, or both pages have at most
    ``max_hashes`` distinct shingles). Otherwise the bottom-k estimate: of the ``max_hashes``
    smallest hashes of the union (which the two sketches always hold), the share found in both;
    unbiased, standard error ``sqrt(J (1 - J) / max_hashes)`` (0.020 at J = 0.7 for 512).

    >>> h = np.arange(1000, dtype=np.uint32)
    >>> fingerprint_jaccard(shingle_fingerprint(h[:600]), shingle_fingerprint(h[200:]))  # exact: 400 / 1000
    0.4
    >>> u = np.random.default_rng(0).permutation(2**31)[:3000].astype(np.uint32)  # hashes are uniform
    >>> fingerprint_jaccard(shingle_fingerprint(u[:2000]), shingle_fingerprint(u[600:2600]))  # exact: 1400 / 2600
    0.5384615384615384
    >>> fingerprint_jaccard(shingle_fingerprint(u[:2000], 512), shingle_fingerprint(u[600:2600], 512), 512)  # estimate
    0.546875
    """
    x, y = np.frombuffer(a, dtype="<u4"), np.frombuffer(b, dtype="<u4")
    if not len(x) and not len(y):
        return 1.0
    if max_hashes <= 0 or (len(x) < max_hashes and len(y) < max_hashes):  # both whole sets: exact
        inter = len(np.intersect1d(x, y, assume_unique=True))
        return inter / (len(x) + len(y) - inter)
    union = np.union1d(x, y)[:max_hashes]
    both = np.intersect1d(np.intersect1d(x, y, assume_unique=True), union, assume_unique=True)
    return len(both) / len(union)


def token_hash64(token: str) -> int:
    """The 64-bit hash of one token (8 bytes of BLAKE2b of its UTF-8, little endian)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def _token_hashes(tokens: Sequence[str]) -> np.ndarray:
    table = _TOKEN_HASHES
    if len(table) > _TOKEN_CACHE_LIMIT:
        table.clear()
    hashes = list(map(table.get, tokens))
    if None in hashes:
        for i, h in enumerate(hashes):
            if h is None:
                tok = tokens[i]
                h = table.get(tok)
                hashes[i] = table[tok] = token_hash64(tok) if h is None else h
    return np.array(hashes, dtype=np.uint64)


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _combine(token_hashes: np.ndarray, width: int) -> np.ndarray:
    """The uint32 hash of every window of ``width`` consecutive token hashes."""
    count = len(token_hashes) - width + 1
    acc = np.zeros(count, dtype=np.uint64)
    for i in range(width):
        acc += token_hashes[i:i + count] * _POSITION_MULTIPLIERS[i]
    return (_fmix64(acc) >> np.uint64(32)).astype(np.uint32)


def shingle_hashes(text: str | None, shingle_size: int = 5) -> np.ndarray:
    """``shingle_hash32`` of every shingle of ``text`` (as ``shingles`` lists them), as uint32."""
    toks = tokenize(text)
    if not toks:
        return np.zeros(0, dtype=np.uint32)
    width = min(len(toks), shingle_size)
    return _combine(_token_hashes(toks), width)


def shingle_hash32(shingle: bytes) -> int:
    """The 32-bit hash of one shingle (UTF-8 tokens joined by one space), equal to what
    ``shingle_hashes`` gives for it; usable as datasketch's ``hashfunc``."""
    toks = shingle.decode("utf-8").split(" ")
    if len(toks) > len(_POSITION_MULTIPLIERS):
        raise ValueError(f"a shingle has at most {len(_POSITION_MULTIPLIERS)} tokens")
    return int(_combine(np.array([token_hash64(t) for t in toks], dtype=np.uint64), len(toks))[0])


class MinHasher:
    """Computes MinHash signatures of many texts at once; one instance per worker."""

    def __init__(self, config: MinHashConfig | None = None):
        self.config = config = config or MinHashConfig()
        a, b = permutations(config.num_perm, config.seed)
        self._a = a[None, :]
        self._b = b[None, :]

    def signatures_from_hashes(self, hashes: Sequence[np.ndarray]) -> np.ndarray:
        """Signatures (``len(hashes) x num_perm`` uint32) from per-document shingle hashes.

        A document without shingles gets the all-``0xFFFFFFFF`` signature (datasketch's empty
        MinHash). Documents are processed in chunks of at most ``chunk_shingles`` shingles.
        """
        cfg = self.config
        out = np.full((len(hashes), cfg.num_perm), MAX_HASH32, dtype=np.uint32)
        i = 0
        while i < len(hashes):
            # Gather whole documents into one chunk (a long document is split over several).
            j, total = i, 0
            while j < len(hashes) and (total == 0 or total + len(hashes[j]) <= cfg.chunk_shingles):
                total += len(hashes[j])
                j += 1
            docs = [k for k in range(i, j) if len(hashes[k])]
            if docs and total <= cfg.chunk_shingles:
                flat = np.concatenate([hashes[k] for k in docs])
                offsets = np.cumsum([0] + [len(hashes[k]) for k in docs[:-1]])
                out[docs] = np.minimum.reduceat(self._permute(flat), offsets, axis=0)
            elif docs:  # one document larger than a chunk
                (k,) = docs
                for start in range(0, len(hashes[k]), cfg.chunk_shingles):
                    part = self._permute(hashes[k][start:start + cfg.chunk_shingles]).min(axis=0)
                    np.minimum(out[k], part, out=out[k])
            i = j
        return out

    def _permute(self, hv: np.ndarray) -> np.ndarray:
        return _fmix32(hv.astype(np.uint32))[:, None] * self._a + self._b

    def signatures(self, texts: Sequence[str | None]) -> np.ndarray:
        """Signatures of ``texts`` (``len(texts) x num_perm`` uint32)."""
        n = self.config.shingle_size
        return self.signatures_from_hashes([shingle_hashes(t, n) for t in texts])

    def band_keys(self, signature: np.ndarray) -> list[bytes]:
        """The LSH bucket keys of one signature: band index byte + the band's raw bytes."""
        r = self.config.rows
        raw = np.ascontiguousarray(signature[: self.config.bands * r], dtype="<u4").tobytes()
        width = 4 * r
        return [bytes((i,)) + raw[i * width:(i + 1) * width] for i in range(self.config.bands)]


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The MinHash estimate of the Jaccard similarity: the fraction of equal signature values."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)
