"""The Beam jobs of one recall round: ``build_prepare_pipeline`` and ``build_recall_pipeline``.

Both only take paths and numbers, read nothing on the driver, and so build the same way for a
local runner and for ``--runner=DataflowRunner --dry_run=True``.

Prepare (start of round r), one pass over the pool:
- pages under the accepted paths that round r-1 did not recall, and that are not positives
  already, become this round's new positives (``positives/``);
- the negatives are a uniform sample of exactly ``negatives`` pool pages not under an accepted
  path: the pages with the smallest ``sha1(salt:id)`` (a bottom-k sample: one combiner holds k
  hashes, never the texts), written to ``negatives/``.

Recall (after training round r's classifier), one pass over the pool:
- score every page (``pipeline.score.ScoreWithClassifier``), count its tokens, rank it by
  (score, hash of id) and find the token-budget threshold (``budget.TokenBudgetThreshold``);
- join the recalled pages with the recall history (first and last round each page was
  recalled) to set ``recall_round`` (first round) and measure the overlap with round r-1;
- aggregate per domain and, within math domains, per URL path prefix;
- write ``recalled/``, ``history/``, ``tables/{domains,paths}.jsonl``, ``tables/stats.json``
  and ``rejects/`` (rows without an id or a text, with the reason).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.pvalue import AsDict, AsSingleton, TaggedOutput

from pipeline.beam_utils import WriteParquetShards, WriteRejects, count, join, write_json
from pipeline.rounds import calibration, discovery
from pipeline.rounds.budget import TokenBudgetThreshold, ranking_key
from pipeline.schema import MATH_SCORE, NUM_TOKENS, RECALL_ROUND, make_reject, schema_with
from pipeline.score.transforms import ScoreWithClassifier

NAMESPACE = "rounds"
SAMPLE_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("url", pa.string()),
                           pa.field("domain", pa.string()), pa.field("text", pa.string())])
HISTORY_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("first_round", pa.int32()),
                            pa.field("last_round", pa.int32())])
SAMPLE_COLUMNS = SAMPLE_SCHEMA.names
SCORE_BINS = 50


def recalled_schema(pool_schema: pa.Schema) -> pa.Schema:
    """The recalled pages: the pool's columns plus math_score, recall_round and num_tokens."""
    return schema_with(pool_schema, MATH_SCORE, RECALL_ROUND, NUM_TOKENS)


def sample_hash(salt: int, page_id: str) -> int:
    """A page's position in the negative sample's random order (64-bit)."""
    return int.from_bytes(hashlib.sha1(f"{salt}:{page_id}".encode("utf-8", "surrogatepass")).digest()[:8], "big")


def score_bin(score: float, bins: int = SCORE_BINS) -> int:
    return min(bins - 1, max(0, int(score * bins)))


class ValidateFn(beam.DoFn):
    """Pool rows -> rows with a usable ``id`` and ``text``; the others to ``rejects`` with a reason."""

    def __init__(self, stage: str):
        self.stage = stage

    def process(self, row):
        reason = None
        if not isinstance(row.get("id"), str) or not row["id"]:
            reason = "missing_id"
        elif not isinstance(row.get("text"), str):
            reason = "missing_text"
        if reason:
            count(NAMESPACE, reason)
            yield TaggedOutput("rejects", make_reject(self.stage, row.get("warc_path") or "", row.get("warc_offset") or -1,
                                                      row.get("url"), reason, f"id={row.get('id')!r}"))
            return
        yield row


class _WriteJson(beam.DoFn):
    def __init__(self, path: str):
        self.path = path

    def process(self, stats, *side):
        extra = {}
        for item in side:
            extra.update(item)
        write_json(self.path, {**{k: list(v) if isinstance(v, tuple) else v for k, v in stats.items()}, **extra})


def _sum_stats_of(pcoll, label: str):
    return pcoll | f"Sum{label}" >> beam.CombinePerKey(discovery.sum_stats)


# ------------------------------------------------------------------------------------------ prepare
def _new_positive(element):
    _, groups = element
    pages = list(groups["page"])
    if not pages:
        return
    if any(True for _ in groups["recalled"]):
        count(NAMESPACE, "under_path_recalled")
        return
    if any(True for _ in groups["prior"]):
        count(NAMESPACE, "under_path_already_positive")
        return
    count(NAMESPACE, "new_positives")
    yield {k: pages[0].get(k) for k in SAMPLE_COLUMNS}


def formulas_of(row) -> int:
    """The page's formula count (0 when the pool has no ``num_formulas`` column or the value is null)."""
    value = row.get("num_formulas")
    return int(value) if isinstance(value, int) else 0


def renderer_of(row) -> bool:
    """Whether the page loads a math renderer (False when the pool has no ``math_renderer`` column)."""
    return row.get("math_renderer") is True


def negative_exclusion(row, matcher, math_domains: frozenset, markup_min_formulas: int) -> str | None:
    """Why a pool page may not be a negative of this round (None: it may): it lies under an
    accepted path, carries math markup, or belongs to an accepted math domain. (Pages recalled
    before are excluded by a join, ``_not_recalled``.)"""
    if matcher.matches(row.get("domain"), row.get("url")):
        return "under_accepted_path"
    if formulas_of(row) >= markup_min_formulas:
        return "markup"
    if (row.get("domain") or "") in math_domains:
        return "math_domain"
    return None


def _not_recalled(element):
    page_id, groups = element
    hashes = list(groups["candidate"])
    if not hashes:
        return
    if any(True for _ in groups["recalled"]):
        count(NAMESPACE, "negatives_excluded_recalled_before")
        yield TaggedOutput("excluded", page_id)
        return
    yield (hashes[0], page_id)


def _bottom_k_ids(keyed, k: int, label: str):
    """The ids of the ``k`` smallest (hash, id) pairs, as one frozenset (a uniform sample of exactly k)."""
    return (keyed
            | f"BottomK{label}" >> beam.combiners.Top.Smallest(k)
            | f"IdSet{label}" >> beam.Map(lambda pairs: frozenset(page_id for _, page_id in pairs)))


def build_prepare_pipeline(p: beam.Pipeline, *, pool_glob: str, out_dir: str, accepted: list[tuple[str, str]],
                           previous_recalled_glob: str | None, prior_positive_globs: list[str], negatives: int,
                           salt: int, math_domains: list[str] | None = None, markup_positives: int = 0,
                           markup_min_formulas: int = 1, has_formulas: bool = True, dry_run: bool = False) -> None:
    """Adds round r's preparation (new positives, markup positives, clean negatives) to ``p``."""
    matcher = discovery.PathMatcher(accepted)
    domains = frozenset(math_domains or ())
    columns = SAMPLE_COLUMNS + (["num_formulas"] if has_formulas else [])
    rows = p | "ReadPool" >> beam.io.ReadFromParquet(pool_glob, columns=columns, validate=not dry_run)
    valid = rows | "Validate" >> beam.ParDo(ValidateFn("rounds")).with_outputs("rejects", main="rows")
    parts = valid.rows | "UnderAcceptedPaths" >> beam.Partition(
        lambda r, n, m: 0 if m.matches(r.get("domain"), r.get("url")) else 1, 2, matcher)
    under = parts[0]

    if previous_recalled_glob:
        recalled = (p | "ReadPreviousRecalled" >> beam.io.ReadFromParquet(previous_recalled_glob, columns=["id"],
                                                                           validate=not dry_run)
                    | "RecalledIds" >> beam.Map(lambda r: (r["id"], None)))
    else:
        recalled = p | "NoPreviousRecalled" >> beam.Create([])
    if matcher and previous_recalled_glob:
        if prior_positive_globs:
            prior = (p | "PriorPositiveFiles" >> beam.Create(prior_positive_globs)
                     | "ReadPriorPositives" >> beam.io.ReadAllFromParquet(columns=["id"])
                     | "PriorIds" >> beam.Map(lambda r: (r["id"], None)))
        else:
            prior = p | "NoPriorPositives" >> beam.Create([])
        new_positives = (
            {"page": under | "PageById" >> beam.Map(lambda r: (r["id"], r)), "recalled": recalled, "prior": prior}
            | "JoinRecallHistory" >> beam.CoGroupByKey()
            | "MissedPages" >> beam.FlatMap(_new_positive)
        )
    else:
        new_positives = p | "NoNewPositives" >> beam.Create([])
    new_positives | "WritePositives" >> WriteParquetShards(join(out_dir, "positives"), SAMPLE_SCHEMA, 1)

    # Markup positives: a uniform sample of the pages that carry formulas.
    markup = valid.rows | "Markup" >> beam.Filter(lambda r, k: formulas_of(r) >= k, markup_min_formulas)
    markup_ids = _bottom_k_ids(markup | "MarkupHash" >> beam.Map(lambda r, s: (sample_hash(s, r["id"]), r["id"]), salt),
                               max(1, markup_positives), "Markup")
    markup_sample = (markup
                     | "InMarkupSample" >> beam.Filter(lambda r, ids, k: k > 0 and r["id"] in ids,
                                                       AsSingleton(markup_ids), markup_positives)
                     | "MarkupRow" >> beam.Map(lambda r: {k: r.get(k) for k in SAMPLE_COLUMNS}))
    markup_sample | "WriteMarkup" >> WriteParquetShards(join(out_dir, "markup"), SAMPLE_SCHEMA, 1)

    # Clean negatives: a uniform sample of the pages that may be negatives and were not recalled before.
    excluded = valid.rows | "NegativeExclusion" >> beam.Map(
        lambda r, m, d, k: (negative_exclusion(r, m, d, k), r), matcher, domains, markup_min_formulas)
    candidates = excluded | "Candidates" >> beam.Filter(lambda kv: kv[0] is None) | "CandidateRow" >> beam.Values()
    joined = (
        {"candidate": candidates | "CandidateHash" >> beam.Map(lambda r, s: (r["id"], sample_hash(s, r["id"])), salt),
         "recalled": recalled}
        | "JoinRecalledBefore" >> beam.CoGroupByKey()
        | "NotRecalledBefore" >> beam.FlatMap(_not_recalled).with_outputs("excluded", main="keyed")
    )
    negative_ids = _bottom_k_ids(joined.keyed, negatives, "Negatives")
    sample = (candidates
              | "InSample" >> beam.Filter(lambda r, ids: r["id"] in ids, AsSingleton(negative_ids))
              | "SampledRow" >> beam.Map(lambda r: {k: r.get(k) for k in SAMPLE_COLUMNS}))
    sample | "WriteNegatives" >> WriteParquetShards(join(out_dir, "negatives"), SAMPLE_SCHEMA, 1)

    one = (1, 0, 0, 0)
    stats = (
        valid.rows | "StatPool" >> beam.Map(lambda r: ("pool_pages", one)),
        valid["rejects"] | "StatRejects" >> beam.Map(lambda r: ("rejected:" + r["reason"], one)),
        under | "StatUnder" >> beam.Map(lambda r: ("under_accepted_paths", one)),
        new_positives | "StatNewPositives" >> beam.Map(lambda r: ("new_positives", one)),
        markup | "StatMarkupPages" >> beam.Map(lambda r: ("markup_pages", one)),
        markup_sample | "StatMarkupPositives" >> beam.Map(lambda r: ("markup_positives", one)),
        excluded | "StatExcluded" >> beam.FlatMap(lambda kv: [("negatives_excluded:" + kv[0], one)] if kv[0] else []),
        joined.excluded | "StatExcludedRecalled" >> beam.Map(lambda _: ("negatives_excluded:recalled_before", one)),
        sample | "StatNegatives" >> beam.Map(lambda r: ("negatives", one)),
    )
    (
        stats
        | "AllStats" >> beam.Flatten()
        | "SumStats" >> beam.CombinePerKey(discovery.sum_stats)
        | "StatsDict" >> beam.combiners.ToDict()
        | "WriteStats" >> beam.ParDo(_WriteJson(join(out_dir, "tables", "prepare_stats.json")))
    )


# ------------------------------------------------------------------------------------------ recall
class AddTokensAndKeyFn(beam.DoFn):
    """Adds ``num_tokens`` (``pipeline.tokens.TokenCounter``) and the private ranking key ``_key``."""

    def __init__(self, tokenizer: str | None):
        self.tokenizer = tokenizer
        self._counter = None

    def setup(self):
        from pipeline.tokens import TokenCounter

        self._counter = TokenCounter(self.tokenizer)

    def process(self, row):
        tokens = self._counter.count([row["text"]])[0]
        yield {**row, "num_tokens": int(tokens), "_key": ranking_key(row["math_score"], row["id"]),
               "_bin": calibration.score_bin(row["math_score"])}


class AnnotateRecallFn(beam.DoFn):
    """Joins this round's recalled pages with the recall history (see the module docstring)."""

    def __init__(self, round_index: int):
        self.round_index = round_index

    def process(self, element):
        page_id, groups = element
        now = list(groups["now"])
        ever = list(groups["ever"])
        previous = ever[0] if ever else None
        r = self.round_index
        if now:
            if len(now) > 1:
                count(NAMESPACE, "duplicate_id")
            row = now[0]
            first = previous["first_round"] if previous else r
            in_previous = previous is not None and previous["last_round"] == r - 1
            tokens = row["num_tokens"]
            yield {**row, "recall_round": first}
            yield TaggedOutput("history", {"id": page_id, "first_round": first, "last_round": r})
            yield TaggedOutput("stats", ("overlap", (1, tokens, int(in_previous), tokens if in_previous else 0)))
            if previous is None:
                yield TaggedOutput("stats", ("new", (1, tokens, 0, 0)))
                if row.get("_by_renderer"):  # weak evidence: does not keep the loop going (saturation)
                    yield TaggedOutput("stats", ("new_by_renderer", (1, tokens, 0, 0)))
        elif previous is not None:
            yield TaggedOutput("history", previous)
            if previous["last_round"] == r - 1:
                yield TaggedOutput("stats", ("dropped_since_previous", (1, 0, 0, 0)))


def _own_recall(row) -> bool:
    """Recalled on the page's own strong evidence (score or markup), not only for lying under an
    accepted path or for loading a math renderer: the domain and path evidence counts only these,
    so a path never proves itself and the weak renderer evidence decides its page alone."""
    return row["_recalled"] and not row["_by_path"] and not row["_by_renderer"]


def _path_keys(row, math_domains, max_depth):
    domain = row.get("domain") or ""
    if domain not in math_domains:
        return []
    stats = discovery.RecallStats.of_page(_own_recall(row), row["num_tokens"]).as_tuple()
    return [((domain, prefix), stats) for prefix in discovery.path_prefixes(row.get("url"), max_depth)]


def _table_line(kv, kind: str) -> str:
    key, (pages, recalled, tokens, recalled_tokens) = kv
    head = {"domain": key} if kind == "domain" else {"domain": key[0], "path_prefix": key[1]}
    return json.dumps({**head, "pages": pages, "recalled": recalled, "tokens": tokens,
                       "recalled_tokens": recalled_tokens}, sort_keys=True)


def _write_lines(lines, path: str, label: str):
    return lines | label >> beam.io.WriteToText(path, num_shards=1, shard_name_template="")


class CalibratedCutFn(beam.DoFn):
    """The round's cut from the score histograms (``calibration.calibrated_cut``), plus the floor
    above which a markup page is recalled; the seed's held-out scores stand in for the markup
    pages when the pool has fewer than ``min_positive_evidence`` of them."""

    def __init__(self, seed_histogram: dict[int, int], min_positive_evidence: int, floor_quantile: float,
                 beta: float = 0.5, accepted: Sequence[tuple[str, str]] = (), renderer_floor_quantile: float = 1.0):
        self.renderer_floor_quantile = renderer_floor_quantile
        self.beta = beta
        self.accepted = [list(pair) for pair in accepted]
        self.seed_histogram = {int(k): int(v) for k, v in (seed_histogram or {}).items()}
        self.min_positive_evidence = min_positive_evidence
        self.floor_quantile = floor_quantile

    def process(self, _, pool: dict, markup: dict, negatives: dict):
        positives, evidence = markup, "markup"
        if sum(markup.values()) < self.min_positive_evidence and sum(self.seed_histogram.values()):
            positives, evidence = self.seed_histogram, "seed"
        if not sum(negatives.values()) or not sum(positives.values()):
            count(NAMESPACE, "cut_without_evidence")
            cut = {"bin": calibration.score_bin(0.5), "threshold": 0.5, "positive_evidence": "none",
                   "positive_pages": sum(positives.values()), "negative_pages": sum(negatives.values())}
        else:
            cut = calibration.calibrated_cut(pool, positives, negatives, evidence, beta=self.beta).to_dict()
        floor, renderer_floor = calibration.evidence_floors(negatives, self.floor_quantile,
                                                            self.renderer_floor_quantile)
        yield {"mode": "calibrated", **cut, "threshold_score": cut["threshold"], "threshold_key": None,
               "all_selected": False, "markup_floor_bin": floor,
               "markup_floor": calibration.bin_score(floor) if floor < calibration.NUM_BINS else 1.0,
               "renderer_floor_bin": renderer_floor,
               "renderer_floor": calibration.bin_score(renderer_floor) if renderer_floor < calibration.NUM_BINS else 1.0,
               "markup_pages": sum(markup.values()), "accepted_paths": self.accepted}


def _histogram_of(pcoll, label: str):
    return (pcoll
            | f"Bin{label}" >> beam.Map(lambda r: r["_bin"])
            | f"Count{label}" >> beam.combiners.Count.PerElement()
            | f"Hist{label}" >> beam.combiners.ToDict())


def _flag_recalled(row, cut, markup_min_formulas, matcher: discovery.PathMatcher):
    """The row with ``_recalled``, and why: ``_by_renderer`` (only its math renderer lifted it over
    the cut) and ``_by_path`` (only its annotated path did)."""
    if cut["mode"] == "budget":
        return {**row, "_recalled": row["_key"] >= cut["threshold_key"], "_by_path": False, "_by_renderer": False}
    score, formulas, renderer = row["math_score"], formulas_of(row), renderer_of(row)
    plain = calibration.above_calibrated_cut(score, formulas, cut, markup_min_formulas)
    by_renderer = not plain and calibration.above_calibrated_cut(score, formulas, cut, markup_min_formulas,
                                                                 renderer=renderer)
    by_path = not (plain or by_renderer) and calibration.above_calibrated_cut(
        score, formulas, cut, markup_min_formulas, matcher.matches(row.get("domain"), row.get("url")), renderer)
    return {**row, "_recalled": plain or by_renderer or by_path, "_by_path": by_path, "_by_renderer": by_renderer}


def build_recall_pipeline(p: beam.Pipeline, *, pool_glob: str, pool_schema: pa.Schema, out_dir: str,
                          model_path: str | list[str], round_index: int, budget: int | None,
                          previous_history_glob: str | None, tokenizer: str | None, batch_size: int, max_tokens: int,
                          domain_min_share: float, domain_min_pages: int, path_min_pages: int, path_max_depth: int,
                          num_shards: int, negatives_glob: str | None = None, seed_histogram: dict | None = None,
                          markup_min_formulas: int = 1, markup_floor_quantile: float = 0.5, cut_beta: float = 0.5,
                          min_positive_evidence: int = 10, accepted: Sequence[tuple[str, str]] = (),
                          renderer_floor_quantile: float = 1.0, dry_run: bool = False) -> None:
    """Adds round r's scoring, cut (calibrated, or by token budget), recall, history and tables to ``p``.

    ``accepted``: (domain, path prefix) pairs a person annotated as math (``--paths``); with a
    calibrated cut their pages are recalled above the markup floor, as pages with formulas are
    (not counted as evidence for domains and paths), and the cut
    written to ``tables/stats.json`` names them (``accepted_paths``) for the recheck on the
    precise text."""
    rows = p | "ReadPool" >> beam.io.ReadFromParquet(pool_glob, validate=not dry_run)
    valid = rows | "Validate" >> beam.ParDo(ValidateFn("rounds")).with_outputs("rejects", main="rows")
    scored = valid.rows | "ScoreWithClassifier" >> ScoreWithClassifier(model_path, batch_size, max_tokens)
    ranked = scored["scored"] | "TokensAndKey" >> beam.ParDo(AddTokensAndKeyFn(tokenizer))
    if budget is not None:
        threshold = (ranked
                     | "KeyTokens" >> beam.Map(lambda r: (r["_key"], r["num_tokens"]))
                     | "TokenBudgetThreshold" >> TokenBudgetThreshold(budget)
                     | "BudgetMode" >> beam.Map(lambda t: {"mode": "budget", **t}))
    else:
        if negatives_glob:
            negative_ids = (p | "ReadNegativeIds" >> beam.io.ReadFromParquet(negatives_glob, columns=["id"],
                                                                           validate=not dry_run)
                            | "NegativeId" >> beam.Map(lambda r: r["id"])
                            | "NegativeIdList" >> beam.combiners.ToList()
                            | "NegativeIdSet" >> beam.Map(frozenset))
        else:
            negative_ids = p | "NoNegatives" >> beam.Create([frozenset()])
        pool_hist = _histogram_of(ranked, "Pool")
        markup_hist = _histogram_of(ranked | "MarkupPages" >> beam.Filter(
            lambda r, k: formulas_of(r) >= k, markup_min_formulas), "Markup")
        negative_hist = _histogram_of(ranked | "NegativePages" >> beam.Filter(
            lambda r, ids: r["id"] in ids, AsSingleton(negative_ids)), "Negatives")
        threshold = (p | "CutSeed" >> beam.Create([None])
                     | "CalibratedCut" >> beam.ParDo(
                         CalibratedCutFn(seed_histogram or {}, min_positive_evidence, markup_floor_quantile, cut_beta,
                                         accepted, renderer_floor_quantile),
                         AsSingleton(pool_hist), AsSingleton(markup_hist), AsSingleton(negative_hist)))
    flagged = ranked | "FlagRecalled" >> beam.Map(_flag_recalled, AsSingleton(threshold), markup_min_formulas,
                                                  discovery.PathMatcher(accepted if budget is None else ()))
    recalled = flagged | "Recalled" >> beam.Filter(lambda r: r["_recalled"])

    if previous_history_glob:
        history = (p | "ReadHistory" >> beam.io.ReadFromParquet(previous_history_glob, validate=not dry_run)
                   | "HistoryById" >> beam.Map(lambda r: (r["id"], r)))
    else:
        history = p | "NoHistory" >> beam.Create([])
    joined = (
        {"now": recalled | "RecalledById" >> beam.Map(lambda r: (r["id"], r)), "ever": history}
        | "JoinHistory" >> beam.CoGroupByKey()
        | "Annotate" >> beam.ParDo(AnnotateRecallFn(round_index)).with_outputs("history", "stats", main="recalled")
    )
    joined.recalled | "WriteRecalled" >> WriteParquetShards(join(out_dir, "recalled"), recalled_schema(pool_schema),
                                                            num_shards)
    joined.history | "WriteHistory" >> WriteParquetShards(join(out_dir, "history"), HISTORY_SCHEMA, 1)
    rejects = (valid["rejects"], scored["rejects"]) | "AllRejects" >> beam.Flatten()
    rejects | "WriteRejects" >> WriteRejects(out_dir)

    page_stats = flagged | "PageStats" >> beam.Map(
        lambda r: (r.get("domain") or "", discovery.RecallStats.of_page(_own_recall(r), r["num_tokens"]).as_tuple()))
    domain_stats = page_stats | "SumPerDomain" >> beam.CombinePerKey(discovery.sum_stats)
    _write_lines(domain_stats | "DomainsWithRecall" >> beam.Filter(lambda kv: kv[1][1] > 0)
                 | "DomainLine" >> beam.Map(_table_line, "domain"), join(out_dir, "tables", "domains.jsonl"),
                 "WriteDomains")
    math_domains = domain_stats | "MathDomains" >> beam.Filter(
        lambda kv: discovery.is_math_domain(discovery.RecallStats(*kv[1]), domain_min_share, domain_min_pages)
    ) | "MathDomainKeys" >> beam.Map(lambda kv: (kv[0], True))
    path_stats = (flagged
                  | "PathKeys" >> beam.FlatMap(_path_keys, AsDict(math_domains), path_max_depth)
                  | "SumPerPath" >> beam.CombinePerKey(discovery.sum_stats))
    _write_lines(path_stats | "PathsWithPages" >> beam.Filter(lambda kv: kv[1][0] >= path_min_pages)
                 | "PathLine" >> beam.Map(_table_line, "path"), join(out_dir, "tables", "paths.jsonl"), "WritePaths")

    one = (1, 0, 0, 0)
    stats = (
        flagged | "ScoreBins" >> beam.Map(
            lambda r: (f"score_bin:{score_bin(r['math_score'])}",
                       discovery.RecallStats.of_page(r["_recalled"], r["num_tokens"]).as_tuple())),
        joined.stats,
        rejects | "RejectReasons" >> beam.Map(lambda r: ("rejected:" + r["reason"], one)),
        math_domains | "CountMathDomains" >> beam.Map(lambda kv: ("math_domains", one)),
        flagged | "RecalledByPath" >> beam.Filter(lambda r: r["_by_path"])
        | "CountRecalledByPath" >> beam.Map(lambda r: ("recalled_by_accepted_path", one)),
        flagged | "RecalledByRenderer" >> beam.Filter(lambda r: r["_by_renderer"])
        | "CountRecalledByRenderer" >> beam.Map(lambda r: ("recalled_by_math_renderer", one)),
    )
    (
        stats
        | "AllStats" >> beam.Flatten()
        | "SumStats" >> beam.CombinePerKey(discovery.sum_stats)
        | "StatsDict" >> beam.combiners.ToDict()
        | "WriteStats" >> beam.ParDo(_WriteJson(join(out_dir, "tables", "stats.json")),
                                     AsSingleton(threshold | "ThresholdEntry" >> beam.Map(lambda t: {"threshold": t})))
    )
