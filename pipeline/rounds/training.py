"""Training the classifiers of one recall round: cross-fitted fastText models on the seed, the
pool pages found so far, and the round's clean negatives.

Cross-fitting: the pool is split into ``FOLDS`` folds by a hash of the page id
(``pipeline.score.transforms.cross_fit_fold``). Model ``f`` trains on the seed's share ``f``
and on the pool pages (positives and negatives) of the *other* folds, and scores the pages of
fold ``f``; so no pool page is ever scored by a model that learnt it as a negative, or as a
positive. On a crawl of billions of pages this changes nothing (each model sees half of the
paper's 500K + 500K examples); on a pool of a few hundred pages it is what keeps a math page
that was drawn as a negative from being scored down by a model that memorised it.

Positives of round r: the seed (a uniform sample) plus the pool's own math, found without the
classifier or by the previous round: pages under the accepted URL paths that the previous
round missed (the paper's discovered positives), pages carrying math markup (``markup/``), and
the pages the previous round recalled, except those it recalled only for loading a math
renderer (``renderer_only_recall``: weak evidence, never fed back, so that one false positive
of the renderer floor cannot teach the next model that such pages are math). At most
``max_discovered_share`` of the positives come from the pool: a uniform sample by a hash of the
page id (``bottom_k_ids``), so the choice does not depend on the order a runner wrote the rows in.

Epochs: the paper's 3 epochs are for 1M examples. A small training set gets more passes, up to
``small_data_epochs``: ``epochs = max(epoch, min(small_data_epochs, ceil(epoch * epoch_scale_examples / n)))``.
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from classifiers.text_sources import ReadStats, expand_sources, sample_texts
from classifiers.train import report_path, train_from_texts
from pipeline.beam_utils import join, parquet_glob, read_json, write_json
from pipeline.rounds import calibration
from pipeline.rounds.discovery import PathMatcher
from pipeline.rounds.config import RoundsConfig
from pipeline.score.transforms import cross_fit_fold

FOLDS = 2


def round_dir(output: str, r: int) -> str:
    return join(output, f"round_{r}")


def model_paths(output: str, r: int) -> list[str]:
    """The round's cross-fitted models, one per fold."""
    return [join(round_dir(output, r), f"model-{f}.bin") for f in range(FOLDS)]


def epochs_for(cfg: RoundsConfig, examples: int) -> int:
    """fastText epochs for a training set of ``examples`` lines (see the module docstring).

    >>> from pipeline.rounds.config import RoundsConfig
    >>> epochs_for(RoundsConfig(), 1_000_000), epochs_for(RoundsConfig(), 50_000), epochs_for(RoundsConfig(), 500)
    (3, 6, 10)
    """
    base = cfg.fasttext.epoch
    if examples <= 0:
        return base
    return max(base, min(cfg.small_data_epochs, math.ceil(base * cfg.epoch_scale_examples / examples)))


def pool_positive_weight(seed_lines: int, pool_lines: int, share: float, max_repeat: int) -> int:
    """How many times each pool positive is written so that the pool's own math carries about
    ``share`` of the positives' weight beside ``seed_lines`` seed texts: at least 1 (never below its
    plain count), at most ``max_repeat``.

    >>> pool_positive_weight(1500, 10, 0.5, 32), pool_positive_weight(1500, 300, 0.5, 32), pool_positive_weight(250_000, 250_000, 0.5, 32)
    (32, 5, 1)
    >>> pool_positive_weight(1500, 0, 0.5, 32), pool_positive_weight(1500, 10, 0.5, 1), pool_positive_weight(900, 100, 0.25, 32)
    (1, 1, 3)
    """
    if pool_lines <= 0 or share <= 0 or max_repeat <= 1:
        return 1
    if share >= 1:
        return max_repeat
    return max(1, min(max_repeat, round(share * seed_lines / ((1 - share) * pool_lines))))


def _seed_fold(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()[:4], "big") % FOLDS


RowFilter = Callable[[dict], bool]
FILTER_COLUMNS = ("math_score", "num_formulas", "math_renderer", "domain", "url")


def _iter_ids(files: Sequence[str], admit: Mapping[str, RowFilter], stats: ReadStats | None) -> Iterator[str]:
    for path in files:
        with FileSystems.open(path) as fh:
            parquet = pq.ParquetFile(fh)
            keep = admit.get(path)
            columns = ["id"] + ([c for c in FILTER_COLUMNS if c in parquet.schema_arrow.names] if keep else [])
            for batch in parquet.iter_batches(batch_size=8192, columns=columns):
                if keep is None:  # ids only: no row dicts
                    yield from (i for i in batch.column(0).to_pylist() if isinstance(i, str))
                    continue
                for row in batch.to_pylist():
                    if not isinstance(row["id"], str):
                        continue
                    if not keep(row):
                        if stats is not None:
                            stats.skip("renderer_only_recall")
                        continue
                    yield row["id"]


def renderer_only_filter(stats_json: str, markup_min_formulas: int) -> RowFilter | None:
    """For the recalled rows of a round (its cut in ``tables/stats.json``): a filter that refuses
    the pages that round recalled only because they load a math renderer (below the cut, no
    formulas, not under an annotated path); None when the round had no calibrated cut."""
    cut = read_json(stats_json)["threshold"]
    if cut.get("mode") != "calibrated":
        return None
    from pipeline.rounds.transforms import formulas_of, renderer_of  # noqa: PLC0415 - as in bottom_k_ids

    paths = PathMatcher.of_cut(cut)

    def admitted(row: dict) -> bool:
        if not renderer_of(row) or not isinstance(row.get("math_score"), float):
            return True
        return calibration.above_calibrated_cut(row["math_score"], formulas_of(row), cut, markup_min_formulas,
                                                paths.matches(row.get("domain"), row.get("url")))

    return admitted


def bottom_k_ids(files: Sequence[str], skip_fold: int, k: int, salt: int,
                 admit: Mapping[str, RowFilter] | None = None, stats: ReadStats | None = None) -> set[str]:
    """The ``k`` distinct page ids of ``files`` outside fold ``skip_fold`` with the smallest
    ``sample_hash`` (a uniform sample that does not depend on the order of the rows; O(k) memory).
    A file named in ``admit`` gives only the rows its filter admits (refusals counted in ``stats``)."""
    from pipeline.rounds.transforms import sample_hash  # noqa: PLC0415 - transforms imports Beam transforms

    heap: list[tuple[int, str]] = []  # max-heap by hash (negated)
    inside: set[str] = set()
    for page_id in _iter_ids(files, admit or {}, stats):
        if page_id in inside or cross_fit_fold(page_id, FOLDS) == skip_fold:
            continue
        h = sample_hash(salt, page_id)
        if len(heap) < k:
            heapq.heappush(heap, (-h, page_id))
            inside.add(page_id)
        elif -heap[0][0] > h:
            _, dropped = heapq.heapreplace(heap, (-h, page_id))
            inside.discard(dropped)
            inside.add(page_id)
    return inside


def iter_pool_texts(files: Sequence[str], skip_fold: int, seen: set[str], stats: ReadStats,
                    only: set[str] | None = None) -> Iterator[str]:
    """Texts of pool-derived Parquet files (``id``, ``text``) whose page is not in fold ``skip_fold``,
    is in ``only`` (when given) and was not yielded before (``seen``), in file order."""
    for path in files:
        stats.files += 1
        with FileSystems.open(path) as fh:
            parquet = pq.ParquetFile(fh)
            for batch in parquet.iter_batches(batch_size=2048, columns=["id", "text"]):
                for page_id, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                    stats.rows += 1
                    if not isinstance(text, str) or not text.strip() or not isinstance(page_id, str):
                        stats.skip("missing_text")
                        continue
                    if page_id in seen or cross_fit_fold(page_id, FOLDS) == skip_fold:
                        continue
                    if only is not None and page_id not in only:
                        continue
                    seen.add(page_id)
                    stats.used += 1
                    yield text


def _existing(pattern: str) -> list[str]:
    match = FileSystems.match([pattern])[0]
    return sorted(m.path for m in match.metadata_list)


def pool_positive_files(cfg: RoundsConfig, r: int) -> tuple[list[str], dict[str, RowFilter]]:
    """Round r's pool-derived positive files: discovered (rounds 1..r), markup (round r), and the
    pages round r-1 recalled; with the filter of each file whose rows are not all admitted (the
    recalled pages, without those recalled only for their renderer: ``renderer_only_filter``)."""
    files, admit = [], {}
    for k in range(1, r + 1):
        files += _existing(parquet_glob(join(round_dir(cfg.output, k), "positives")))
    files += _existing(parquet_glob(join(round_dir(cfg.output, r), "markup")))
    if r > 1:
        recalled = _existing(parquet_glob(join(round_dir(cfg.output, r - 1), "recalled")))
        keep = renderer_only_filter(join(round_dir(cfg.output, r - 1), "tables", "stats.json"),
                                    cfg.markup_min_formulas) if recalled else None
        files += recalled
        admit.update({path: keep for path in recalled if keep is not None})
    return files, admit


def train_round_classifiers(cfg: RoundsConfig, r: int) -> dict:
    """Train round r's cross-fitted models; returns the report: per model, its training report;
    overall, the counts, the validation metrics of model 0, and the histogram of the held-out
    seed positives' scores (``calibration``'s fallback evidence)."""
    out = round_dir(cfg.output, r)
    pool_files, admit = pool_positive_files(cfg, r)
    negative_files = _existing(parquet_glob(join(out, "negatives")))
    seed_files = expand_sources(cfg.seed)
    k_pool = int(cfg.positives_per_round * cfg.max_discovered_share)
    reports, seed_hist, weights = [], {}, []
    totals = {"seed": ReadStats(), "discovered": ReadStats(), "negatives": ReadStats()}
    for f, model in enumerate(model_paths(cfg.output, r)):
        stats = {"seed": ReadStats(), "discovered": ReadStats(), "negatives": ReadStats()}
        chosen = bottom_k_ids(pool_files, f, k_pool, cfg.random_seed, admit, stats["discovered"])
        pool_positives = iter_pool_texts(pool_files, f, set(), stats["discovered"], only=chosen)
        k_seed = max(1, cfg.positives_per_round - len(chosen))
        # Each model takes the seed rows of its own share (the seed is never scored, so any split will do).
        seed_count = [0]

        def seed(f=f, seed_count=seed_count):
            for t in sample_texts(seed_files, k_seed * FOLDS, seed=cfg.random_seed, stats=stats["seed"]):
                if _seed_fold(t) == f:
                    seed_count[0] += 1
                    yield t

        def weighted_pool(pool_positives=pool_positives, seed_count=seed_count, n=len(chosen)):
            # read after the seed, so the weight is known; the file order does not depend on it
            weight = pool_positive_weight(seed_count[0], n, cfg.max_discovered_share, cfg.balance_max_repeat)
            weights.append(weight)
            for t in pool_positives:
                yield t, weight

        negatives = iter_pool_texts(negative_files, f, set(), stats["negatives"])
        result = train_from_texts(itertools.chain(seed(), weighted_pool()), negatives, model,
                                  fasttext_config=cfg.fasttext, validation_fraction=cfg.validation_fraction,
                                  max_tokens=cfg.max_tokens, seed=cfg.random_seed + f,
                                  epoch_schedule=lambda n: epochs_for(cfg, n),
                                  balance_max_repeat=cfg.balance_max_repeat)
        for b, c in result.pop("validation_positive_histogram", {}).items():
            seed_hist[int(b)] = seed_hist.get(int(b), 0) + int(c)
        result["read"] = {k: v.to_dict() for k, v in stats.items()}
        write_json(report_path(model), result)
        reports.append(result)
        for k, v in stats.items():
            totals[k].used += v.used
            if f == 0:  # every model reads all rows before its fold is set apart: its skips are the pages'
                totals[k].skipped = dict(v.skipped)
    first = reports[0]
    return {
        "models": model_paths(cfg.output, r),
        "folds": FOLDS,
        "epochs": [rep["fasttext"]["epoch"] for rep in reports],
        "validation": first.get("validation"),
        "pool_positive_weight": weights,
        "train_seconds": round(sum(rep["train_seconds"] for rep in reports), 3),
        "read": {k: v.to_dict() for k, v in totals.items()},
        "seed_validation_histogram": seed_hist,
    }
