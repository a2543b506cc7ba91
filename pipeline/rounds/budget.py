"""The token-budget threshold: which pages make up the top ``budget`` tokens of the pool, found
without sorting the pool on one machine.

The paper ranks every page by classifier score and keeps the top of the ranking until a token
budget is reached (40B tokens in round one). Here every page gets a 64-bit ranking key:

    key = (float32 bits of the score) << 32 | (first 32 bits of sha1(page id))

For scores in [0, 1] the float32 bit pattern is monotone in the score, so keys sort like scores,
and the hash breaks ties between equal scores deterministically (fastText gives many pages the
same probability, e.g. exactly 1.0 after clipping). The threshold is the largest key K such that
the pages with ``key >= K`` hold at least ``budget`` tokens. It is found digit by digit, 16 bits
at a time (a radix select): four passes over (key, tokens) pairs, each one a 65,536-bin token
histogram of the next digit among the keys that share the prefix chosen so far; every histogram
is a small combiner, so no machine ever holds more than one histogram.

Guarantee (tolerance): the recalled pages are exactly the top of the ranking by (score, hash);
their tokens reach the budget and overshoot it by less than the tokens of the one page at the
threshold (``budget <= selected < budget + tokens of the threshold page``), unless the pool
holds fewer tokens than the budget, in which case every page is selected. Ties of both score
and 32-bit hash (probability ~n^2/2^33 per score value) are selected together.
"""
from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

import apache_beam as beam

DIGIT_BITS = 16
LEVELS = 4  # 4 x 16 bits = the whole 64-bit key
DIGITS = 1 << DIGIT_BITS


def score_bits(score: float) -> int:
    """The float32 bit pattern of ``score`` clipped to [0, 1]: monotone in the score."""
    clipped = min(1.0, max(0.0, float(score)))
    return struct.unpack(">I", struct.pack(">f", clipped))[0]


def score_from_bits(bits: int) -> float:
    """Inverse of ``score_bits``."""
    return struct.unpack(">f", struct.pack(">I", bits & 0xFFFFFFFF))[0]


def ranking_key(score: float, page_id: str) -> int:
    """The page's 64-bit ranking key: score first, then a hash of its id to break ties."""
    tie = int.from_bytes(hashlib.sha1(page_id.encode("utf-8", "surrogatepass")).digest()[:4], "big")
    return (score_bits(score) << 32) | tie


def digit(key: int, level: int) -> int:
    """Digit ``level`` (0 = most significant) of a 64-bit key."""
    return (key >> (DIGIT_BITS * (LEVELS - 1 - level))) & (DIGITS - 1)


def prefix(key: int, level: int) -> int:
    """The first ``level`` digits of a key (0 for level 0)."""
    return key >> (DIGIT_BITS * (LEVELS - level)) if level else 0


def initial_state(budget: int) -> dict:
    """The search state before the first pass: nothing chosen, the whole budget still needed."""
    if budget <= 0:
        raise ValueError(f"the token budget must be positive, got {budget}")
    return {"budget": int(budget), "level": 0, "prefix": 0, "need": int(budget), "tokens_above": 0,
            "total_tokens": None, "all_selected": False}


def digit_of_pair(pair: tuple[int, int], level: int, state: dict) -> list[tuple[int, int]]:
    """``[(digit, tokens)]`` when the pair's key shares the chosen prefix at ``level``, else ``[]``."""
    key, tokens = pair
    if state["all_selected"] or prefix(key, level) != state["prefix"]:
        return []
    return [(digit(key, level), tokens)]


def select_digit(state: dict, histogram: dict[int, int]) -> dict:
    """The next state from the token histogram of the next digit (pure, hand-checkable).

    Walks the digits from the highest down, accumulating tokens, and picks the digit where the
    tokens still needed are reached. When even all keys under the prefix are not enough (only
    possible at the first level: the pool is smaller than the budget) every page is selected.
    """
    if state["all_selected"]:
        return {**state, "level": state["level"] + 1}
    level = state["level"]
    state = dict(state)
    if level == 0:
        state["total_tokens"] = int(sum(histogram.values()))
    above = 0
    for d in sorted(histogram, reverse=True):
        tokens = histogram[d]
        if above + tokens >= state["need"]:
            state.update(level=level + 1, prefix=(state["prefix"] << DIGIT_BITS) | d, need=state["need"] - above,
                         tokens_above=state["tokens_above"] + above)
            if level == LEVELS - 1:
                state["threshold_tokens"] = int(tokens)  # tokens of the key at the threshold itself
            return state
        above += tokens
    if level != 0:
        raise AssertionError(f"inconsistent histograms: prefix {state['prefix']:#x} holds {above} tokens, "
                             f"{state['need']} needed")
    state.update(level=level + 1, all_selected=True, prefix=0, tokens_above=above)
    return state


def finish(state: dict) -> dict:
    """The result after the last pass: ``threshold_key`` (select keys >= it), its score, and the
    selected token count."""
    if state["all_selected"]:
        key, selected = 0, state["tokens_above"]
    else:
        key, selected = state["prefix"], state["tokens_above"] + state["threshold_tokens"]
    return {
        "budget": state["budget"],
        "total_tokens": state["total_tokens"] or 0,
        "threshold_key": key,
        "threshold_score": score_from_bits(key >> 32),
        "selected_tokens": int(selected),
        "all_selected": state["all_selected"],
    }


def threshold_in_memory(pairs: Iterable[tuple[int, int]], budget: int) -> dict:
    """The same search on an in-memory list (reference implementation, for tests and small pools)."""
    pairs = list(pairs)
    state = initial_state(budget)
    for level in range(LEVELS):
        histogram: dict[int, int] = {}
        for pair in pairs:
            for d, tokens in digit_of_pair(pair, level, state):
                histogram[d] = histogram.get(d, 0) + tokens
        state = select_digit(state, histogram)
    return finish(state)


class SumPerDigitFn(beam.CombineFn):
    """Sparse token histogram ``{digit: tokens}``; at most 65,536 entries."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, pair):
        d, tokens = pair
        acc[d] = acc.get(d, 0) + tokens
        return acc

    def merge_accumulators(self, accs):
        accs = iter(accs)
        out = next(accs)
        for acc in accs:
            for d, tokens in acc.items():
                out[d] = out.get(d, 0) + tokens
        return out

    def extract_output(self, acc):
        return acc


class TokenBudgetThreshold(beam.PTransform):
    """``(ranking_key, tokens)`` pairs -> a one-element PCollection with ``finish``'s result."""

    def __init__(self, budget: int):
        super().__init__()
        self.budget = int(budget)

    def expand(self, pairs):
        state = pairs.pipeline | "InitialState" >> beam.Create([initial_state(self.budget)])
        for level in range(LEVELS):
            histogram = (
                pairs
                | f"Digits{level}" >> beam.FlatMap(digit_of_pair, level, beam.pvalue.AsSingleton(state))
                | f"Histogram{level}" >> beam.CombineGlobally(SumPerDigitFn())
            )
            state = state | f"Select{level}" >> beam.Map(select_digit, beam.pvalue.AsSingleton(histogram))
        return state | "Finish" >> beam.Map(finish)
