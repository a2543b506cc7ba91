"""The benchmark index: hashed n-grams of every benchmark text, built once, queried per page.

The paper's rule (DeepSeekMath, section 2.1): a page is contaminated if it contains any
10-gram of a benchmark text; a benchmark text of 3 to 9 tokens is matched as an exact whole
token sequence. Here:

- every benchmark text is normalised with ``normalize.tokenize`` (the same function that
  tokenises pages); a text of ``n`` or more tokens contributes all its ``n``-token windows,
  one of ``min_short_tokens..n-1`` tokens is kept whole (matched as a contiguous run of page
  tokens, so ``12 apples`` never matches inside ``112 apples``); shorter texts are not indexed;
- windows are stored as sorted ``uint64`` hash arrays (one for the n-grams, one per short
  length) with, beside each hash, the number of the first text holding it, and the normalised
  texts themselves, so that every hash hit is checked against the real tokens (a hash
  collision is counted and ignored) and the audit can name the item and the matched words;
- memory: 12 bytes per distinct n-gram, a 2 MiB bitmap (a one-hash Bloom filter that spares
  most page windows the binary search) and the normalised texts; for the bundled default
  benchmarks 0.55 M n-grams: 12.6 MiB in memory, 6.2 MiB on disk (``BenchmarkIndex.memory_bytes``).

Departures from the paper:
- n-gram windows with fewer than ``min_wordlike_tokens`` (default 2) word-like tokens (words
  of two or more letters, CJK characters; not numbers, single letters or TeX commands) are not
  indexed: a formula or a list with at most one word in it (``1 2 3 ... 10``,
  ``x \\frac b \\sqrt b 2 4 ac 2 a``, ``1 2 3 4 5 6 7 8 9 and``) is common text, not evidence
  of a leak;
- so that no benchmark text is lost by that, a long text none of whose windows is indexed is
  matched as a whole token sequence instead (anchored on the hash of its first n-gram, then
  verified token by token), like a short text; whole texts (short or long) need
  ``min_wordlike_whole`` (default 1) word-like tokens: a text that is a bare formula
  (``\\binom 10 4 ... 210``) is not indexed at all (counted as ``undetectable_texts`` /
  ``uninformative_short_texts``);
- ``min_wordlike_tokens=0, min_wordlike_whole=0`` is the paper's plain rule (``--plain_rule``);
- identical normalised texts are indexed once (the audit names the first item holding them);
- optional ``max_items_per_ngram`` (default 0 = off, the paper's rule): n-grams shared by at
  least that many distinct benchmark items are treated as template phrasing and not indexed
  (an item all of whose n-grams are shared then cannot be matched any more).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from pipeline.decontaminate.benchmarks_spec import BenchmarkText
from pipeline.decontaminate.ngrams import ngram_text, sequence_hash, token_hashes, window_hashes
from pipeline.decontaminate.normalize import is_wordlike, tokenize

FORMAT_VERSION = 2  # 2: whole-text anchors (``whole_hashes``) and ``min_wordlike_whole``


@dataclass(frozen=True)
class IndexConfig:
    """Matching parameters; the defaults are the paper's."""

    n: int = 10  # n-gram length of the main rule
    min_short_tokens: int = 3  # benchmark texts of min_short_tokens..n-1 tokens are matched whole
    max_items_per_ngram: int = 0  # >0: drop n-grams found in at least this many items (0: keep all)
    min_wordlike_tokens: int = 2  # n-gram windows with fewer word-like tokens are not indexed (paper: 0)
    # whole texts (short ones, or long ones without an indexed window) need this many (paper: 0)
    min_wordlike_whole: int = 1

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if not 1 <= self.min_short_tokens:
            raise ValueError(f"min_short_tokens must be >= 1, got {self.min_short_tokens}")
        if self.min_wordlike_tokens < 0 or self.min_wordlike_tokens > self.n:
            raise ValueError(f"min_wordlike_tokens must be in 0..n, got {self.min_wordlike_tokens}")
        if self.min_wordlike_whole < 0:
            raise ValueError(f"min_wordlike_whole must be >= 0, got {self.min_wordlike_whole}")
        if self.max_items_per_ngram < 0 or self.max_items_per_ngram == 1:
            raise ValueError("max_items_per_ngram must be 0 (off) or >= 2")


@dataclass(frozen=True)
class TextMatch:
    """A benchmark text found in a page: the first matching window and how many windows matched."""

    benchmark: str
    item_id: str
    field: str
    kind: str  # "ngram" (an n-gram of a long text) or "exact" (a whole short text)
    start: int  # token position of the first matching window in the page
    matched: str  # the first matching window's normalised tokens, space-joined
    windows: int  # matching windows of the page for this text


@dataclass
class IndexStats:
    """What went into the index (written to summary.json)."""

    benchmarks: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> items, texts
    texts_indexed: int = 0
    texts_duplicate: int = 0  # identical normalised text already indexed
    texts_too_short: int = 0  # fewer than min_short_tokens tokens: not indexed
    short_texts: int = 0  # matched as whole token sequences
    ngrams: int = 0  # distinct n-grams in the index
    template_ngrams_dropped: int = 0
    uninformative_ngrams: int = 0  # windows without enough word-like tokens (numbers, variables)
    uninformative_short_texts: int = 0
    whole_texts: int = 0  # long texts without an indexed window, matched whole instead
    undetectable_texts: int = 0  # long texts without an indexed window and too few words to match whole
    build_seconds: float = 0.0


class BenchmarkIndex:
    """Hashed benchmark n-grams and short texts; ``find`` reports the benchmark texts a page contains."""

    def __init__(
        self,
        config: IndexConfig,
        texts: list[tuple[str, str, str, str]],
        ngram_hashes: np.ndarray,
        ngram_refs: np.ndarray,
        short: dict[int, tuple[np.ndarray, np.ndarray]],
        stats: IndexStats,
        whole_hashes: np.ndarray | None = None,
        whole_refs: np.ndarray | None = None,
    ):
        self.config = config
        self.texts = texts  # (benchmark, item_id, field, normalised tokens joined by spaces)
        self.ngram_hashes = ngram_hashes
        self.ngram_refs = ngram_refs
        self.short = short
        self.stats = stats
        # long texts matched whole: the hash of their first n-gram (the anchor), and their text number
        self.whole_hashes = np.empty(0, np.uint64) if whole_hashes is None else whole_hashes
        self.whole_refs = np.empty(0, np.int32) if whole_refs is None else whole_refs
        self.collisions = 0  # hash hits whose tokens did not match (expected ~0)
        self._filter = _bit_filter(ngram_hashes)

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, texts: Iterable[BenchmarkText], config: IndexConfig = IndexConfig()) -> BenchmarkIndex:
        """Normalise and hash every text; see the module docstring for the rules."""
        t0 = time.perf_counter()
        stats = IndexStats()
        kept: list[tuple[str, str, str, str]] = []
        seen: dict[str, int] = {}
        items: dict[tuple[str, str], int] = {}
        vocab: dict[str, int] = {}
        token_ids: list[int] = []  # all long texts' tokens, concatenated
        long_ref: list[int] = []  # per long text: its number in `kept`
        long_item: list[int] = []
        long_len: list[int] = []
        short_parts: dict[int, list[tuple[int, int]]] = {}
        for bt in texts:
            bstats = stats.benchmarks.setdefault(bt.benchmark, {"items": 0, "texts": 0})
            key = (bt.benchmark, bt.item_id)
            if key not in items:
                items[key] = len(items)
                bstats["items"] += 1
            bstats["texts"] += 1
            tokens = tokenize(bt.text)
            if len(tokens) < config.min_short_tokens:
                stats.texts_too_short += 1
                continue
            norm = " ".join(tokens)
            if norm in seen:
                stats.texts_duplicate += 1
                continue
            ref = len(kept)
            seen[norm] = ref
            kept.append((bt.benchmark, bt.item_id, bt.field, norm))
            if len(tokens) >= config.n:
                token_ids.extend(vocab.setdefault(t, len(vocab)) for t in tokens)
                long_ref.append(ref)
                long_item.append(items[key])
                long_len.append(len(tokens))
            elif sum(map(is_wordlike, tokens)) < config.min_wordlike_whole:
                stats.uninformative_short_texts += 1
            else:
                short_parts.setdefault(len(tokens), []).append((sequence_hash(tokens), ref))
                stats.short_texts += 1
        stats.texts_indexed = len(kept)

        # All long texts at once: hash every window of the concatenation, keep those that lie
        # inside one text and hold enough word-like tokens.
        words_of_vocab = list(vocab)
        ids = np.asarray(token_ids, dtype=np.int64)
        hashes = token_hashes(words_of_vocab)[ids]
        wordlike = np.fromiter(map(is_wordlike, words_of_vocab), dtype=np.int32, count=len(vocab))[ids]
        lengths = np.asarray(long_len, dtype=np.int64)
        text_of_token = np.repeat(np.arange(len(lengths)), lengths)
        text_end = np.repeat(np.cumsum(lengths), lengths)
        all_h = window_hashes(hashes, config.n)
        starts = np.arange(len(all_h))
        valid = starts + config.n <= text_end[: len(all_h)]
        informative = _window_sums(wordlike, config.n) >= config.min_wordlike_tokens
        stats.uninformative_ngrams = int((valid & ~informative).sum())
        keep = valid & informative
        whole_hashes, whole_refs = _whole_text_anchors(
            all_h, keep, text_of_token, wordlike, lengths, np.asarray(long_ref, dtype=np.int32), config, stats
        )
        all_h = all_h[keep]
        window_text = text_of_token[: len(keep)][keep]
        all_r = np.asarray(long_ref, dtype=np.int32)[window_text] if len(window_text) else np.empty(0, np.int32)
        all_i = np.asarray(long_item, dtype=np.int32)[window_text] if len(window_text) else np.empty(0, np.int32)
        ngram_hashes, first = np.unique(all_h, return_index=True)
        ngram_refs = all_r[first]
        if config.max_items_per_ngram and len(all_h):
            items_per_hash = _distinct_items_per_hash(all_h, all_i, ngram_hashes)
            keep = items_per_hash < config.max_items_per_ngram
            stats.template_ngrams_dropped = int((~keep).sum())
            ngram_hashes, ngram_refs = ngram_hashes[keep], ngram_refs[keep]
        stats.ngrams = len(ngram_hashes)

        short: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for length, pairs in sorted(short_parts.items()):
            h = np.array([p[0] for p in pairs], dtype=np.uint64)
            r = np.array([p[1] for p in pairs], dtype=np.int32)
            h, first = np.unique(h, return_index=True)
            short[length] = (h, r[first])
        stats.build_seconds = round(time.perf_counter() - t0, 3)
        return cls(config, kept, ngram_hashes, ngram_refs.astype(np.int32), short, stats, whole_hashes, whole_refs)

    # ------------------------------------------------------------------ query
    def find(self, tokens: list[str], limit: int | None = None) -> list[TextMatch]:
        """The benchmark texts whose n-grams (or whole short text) occur in ``tokens``, by first position.

        Every hash hit is verified against the stored normalised text. ``limit`` caps how many
        distinct texts are returned (the page is contaminated either way).
        """
        if not tokens:
            return []
        hashes = token_hashes(tokens)
        found: dict[int, list] = {}  # ref -> [kind, start, length, windows]
        n = self.config.n
        wh = window_hashes(hashes, n)
        self._hits(tokens, wh, n, self.ngram_hashes, self.ngram_refs, "ngram", found, self._filter)
        self._hits(tokens, wh, n, self.whole_hashes, self.whole_refs, "whole", found)
        for length, (table, refs) in self.short.items():
            self._hits(tokens, window_hashes(hashes, length), length, table, refs, "exact", found)
        ordered = sorted(found.items(), key=lambda kv: kv[1][1])
        if limit is not None:
            ordered = ordered[:limit]
        out = []
        for ref, (kind, start, length, windows) in ordered:
            benchmark, item_id, fld, _ = self.texts[ref]
            out.append(TextMatch(benchmark, item_id, fld, kind, start, ngram_text(tokens, start, length), windows))
        return out

    def _hits(self, tokens, wh, length, table, refs, kind, found, bit_filter=None) -> None:
        """Record in ``found`` the verified hits of the page's window hashes ``wh`` (windows of
        ``length`` tokens) in ``table``. ``kind`` "whole": ``table`` holds the first n-gram of
        texts matched whole, and the hit must be followed by the rest of the text."""
        if len(wh) == 0 or len(table) == 0:
            return
        starts = np.arange(len(wh))
        if bit_filter is not None:  # drops most non-members before the binary search
            maybe = _in_bit_filter(bit_filter, wh)
            wh, starts = wh[maybe], starts[maybe]
        pos = np.searchsorted(table, wh)
        pos[pos == len(table)] = 0
        hit = np.nonzero(table[pos] == wh)[0]
        for start, p in zip(starts[hit].tolist(), pos[hit].tolist()):
            # several whole texts may share their first n-gram: try every entry with this hash
            end = int(np.searchsorted(table, table[p], side="right")) if kind == "whole" else p + 1
            for q in range(p, end):
                ref = int(refs[q])
                text = self.texts[ref][3]
                gram = ngram_text(tokens, start, length)
                if kind == "exact":
                    ok = gram == text
                elif kind == "ngram":
                    ok = f" {gram} " in f" {text} "
                else:  # whole: the anchor is the text's first n-gram, the rest must follow it
                    ok = text == gram or text.startswith(gram + " ")
                    if ok:
                        gram = ngram_text(tokens, start, text.count(" ") + 1)
                        if gram != text:  # the text's start, not all of it: no match, no collision
                            continue
                if not ok:
                    self.collisions += 1
                    continue
                entry = found.get(ref)
                if entry is None:
                    found[ref] = ["exact" if kind == "whole" else kind, start, gram.count(" ") + 1, 1]
                else:
                    entry[3] += 1

    # ------------------------------------------------------------------ size, persistence
    @property
    def memory_bytes(self) -> int:
        """Bytes held by the hash arrays and the stored normalised texts."""
        arrays = self.ngram_hashes.nbytes + self.ngram_refs.nbytes + self._filter.nbytes
        arrays += sum(h.nbytes + r.nbytes for h, r in self.short.values())
        arrays += self.whole_hashes.nbytes + self.whole_refs.nbytes
        texts = sum(len(t[3].encode("utf-8")) + len(t[1]) + 64 for t in self.texts)
        return int(arrays + texts)

    def summary(self) -> dict:
        """The index's parameters, contents and size, for summary.json."""
        return {
            "config": asdict(self.config),
            **asdict(self.stats),
            "short_lengths": {str(k): len(v[0]) for k, v in self.short.items()},
            "memory_bytes": self.memory_bytes,
        }

    def to_bytes(self) -> bytes:
        """A self-contained ``.npz`` serialisation (no pickle)."""
        meta = {
            "format": FORMAT_VERSION,
            "config": asdict(self.config),
            "stats": asdict(self.stats),
            "texts": self.texts,
            "short_lengths": sorted(self.short),
        }
        arrays = {
            "meta": np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
            "ngram_hashes": self.ngram_hashes,
            "ngram_refs": self.ngram_refs,
            "whole_hashes": self.whole_hashes,
            "whole_refs": self.whole_refs,
        }
        for length, (h, r) in self.short.items():
            arrays[f"short_hashes_{length}"] = h
            arrays[f"short_refs_{length}"] = r
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> BenchmarkIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"unsupported index format {meta.get('format')!r} (expected {FORMAT_VERSION})")
            short = {int(L): (z[f"short_hashes_{L}"], z[f"short_refs_{L}"]) for L in meta["short_lengths"]}
            texts = [tuple(t) for t in meta["texts"]]
            return cls(
                IndexConfig(**meta["config"]),
                texts,
                z["ngram_hashes"],
                z["ngram_refs"],
                short,
                IndexStats(**meta["stats"]),
                z["whole_hashes"],
                z["whole_refs"],
            )

    def save(self, path: str) -> None:
        """Write the index to ``path`` on any Beam filesystem."""
        from pipeline.beam_utils import write_bytes

        write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: str) -> BenchmarkIndex:
        """Read an index written by ``save`` from any Beam filesystem."""
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path, compression_type="uncompressed") as fh:
            return cls.from_bytes(fh.read())


_FILTER_BITS = 24  # 2 MiB bitmap over the top 24 bits of each n-gram hash


def _bit_filter(hashes: np.ndarray) -> np.ndarray:
    """A one-hash Bloom filter (bitmap) of ``hashes``: no false negatives."""
    bits = np.zeros(1 << (_FILTER_BITS - 3), dtype=np.uint8)
    top = (hashes >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)
    np.bitwise_or.at(bits, top >> 3, (1 << (top & 7)).astype(np.uint8))
    return bits


def _in_bit_filter(bits: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Boolean mask: True where a hash may be in the filter, False where it surely is not."""
    top = (hashes >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)
    return ((bits[top >> 3] >> (top & 7).astype(np.uint8)) & 1).astype(bool)


def _window_sums(values: np.ndarray, n: int) -> np.ndarray:
    """Sum of every ``n``-long window of ``values`` (``len - n + 1`` values, or none)."""
    if len(values) < n:
        return np.empty(0, dtype=np.int64)
    c = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    return c[n:] - c[:-n]


def _whole_text_anchors(
    window_h: np.ndarray,
    indexed: np.ndarray,
    text_of_token: np.ndarray,
    wordlike: np.ndarray,
    lengths: np.ndarray,
    refs: np.ndarray,
    config: IndexConfig,
    stats: IndexStats,
) -> tuple[np.ndarray, np.ndarray]:
    """The anchors of the long texts none of whose windows is indexed: the hash of each such
    text's first n-gram and its text number (sorted by hash), for texts with at least
    ``min_wordlike_whole`` word-like tokens; the others are counted as undetectable.

    ``window_h``/``indexed`` cover every window start of the concatenated long texts;
    ``text_of_token``/``wordlike`` every token; ``lengths``/``refs`` every long text."""
    if len(lengths) == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int32)
    text_of_window = text_of_token[: len(indexed)]
    has_window = np.bincount(text_of_window[indexed], minlength=len(lengths)) > 0
    words = np.bincount(text_of_token, weights=wordlike, minlength=len(lengths))
    orphan = ~has_window
    whole = orphan & (words >= config.min_wordlike_whole)
    stats.whole_texts = int(whole.sum())
    stats.undetectable_texts = int((orphan & ~whole).sum())
    first_window = (np.cumsum(lengths) - lengths)[whole]
    h, r = window_h[first_window], refs[whole]
    order = np.argsort(h, kind="stable")
    return h[order], r[order].astype(np.int32)


def _distinct_items_per_hash(hashes: np.ndarray, items: np.ndarray, unique_hashes: np.ndarray) -> np.ndarray:
    """For each of ``unique_hashes`` (sorted), the number of distinct items whose windows have it."""
    order = np.lexsort((items, hashes))
    h, i = hashes[order], items[order]
    new_pair = np.ones(len(h), dtype=bool)
    new_pair[1:] = (h[1:] != h[:-1]) | (i[1:] != i[:-1])
    pair_hashes = h[new_pair]
    _, counts = np.unique(pair_hashes, return_counts=True)
    return counts  # np.unique sorts, so this aligns with unique_hashes


def build_index(specs, config: IndexConfig = IndexConfig()) -> BenchmarkIndex:
    """Build the index from a list of ``BenchmarkSpec`` (reads the benchmark files)."""
    from pipeline.decontaminate.benchmarks_spec import read_texts

    def all_texts():
        for spec in specs:
            yield from read_texts(spec)

    return BenchmarkIndex.build(all_texts(), config)
