"""``ScoreWithClassifier``: add ``math_score`` to every row with the fastText math classifier.

The model is loaded once per worker process: ``DoFn.setup`` acquires it through
``apache_beam.utils.shared.Shared`` keyed by the model path, so every DoFn instance (one per
thread and per stage) of a process uses the same copy instead of one ~2 GB copy each. Rows are
scored in batches (``BatchElements``) through fastText's multi-line predict.

Cross-fitting: given several models, a row is scored by model ``cross_fit_fold(id, k)``, so
the recall rounds can score every pool page with a model that never trained on it (model ``f``
trains on the pool pages of the other folds only).

Rows whose ``text`` is not a string are not scored: they go to the ``rejects`` output with
reason ``missing_text`` and are counted. A row with an empty text is scored 0.0 and counted
(``empty_text``). If fastText fails on a batch, its rows are scored one by one and a row that
still fails is rejected (``score_error``) instead of failing the job.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.utils import shared

from classifiers.math_classifier import MathClassifier
from classifiers.normalize import DEFAULT_MAX_TOKENS
from pipeline.beam_utils import count
from pipeline.schema import make_reject

NAMESPACE = "score"
REJECTS = "rejects"


def cross_fit_fold(page_id: str, folds: int) -> int:
    """The cross-fitting fold of a page (stable across runs and runners; uniform over ``folds``)."""
    if folds <= 1:
        return 0
    digest = hashlib.sha1(f"fold:{page_id}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") % folds


class _SharedClassifier:
    """Holder that ``Shared`` can keep a weak reference to."""

    def __init__(self, classifiers: list[MathClassifier]):
        self.classifiers = classifiers


class ScoreBatchFn(beam.DoFn):
    """Lists of rows -> each row plus ``math_score``; rejects to the ``rejects`` output."""

    def __init__(self, model_path: str | Sequence[str], handle: shared.Shared, max_tokens: int = DEFAULT_MAX_TOKENS,
                 file_key: str = "warc_path"):
        self.model_paths = [model_path] if isinstance(model_path, str) else list(model_path)
        self.max_tokens = max_tokens
        self.file_key = file_key
        self._handle = handle
        self._holder = None

    def setup(self):
        paths, max_tokens = self.model_paths, self.max_tokens
        self._holder = self._handle.acquire(
            lambda: _SharedClassifier([MathClassifier.load(path, max_tokens) for path in paths]),
            tag=f"{'|'.join(paths)}|{max_tokens}")

    def _reject(self, row: dict, reason: str, detail: str = ""):
        count(NAMESPACE, reason)
        return beam.pvalue.TaggedOutput(
            REJECTS, make_reject("score", row.get(self.file_key) or "", row.get("warc_offset") or -1, row.get("url"),
                                 reason, detail or f"id={row.get('id')}"))

    def process(self, batch):
        classifiers = self._holder.classifiers
        groups: dict[int, list[dict]] = {}
        for row in batch:
            if not isinstance(row.get("text"), str):
                yield self._reject(row, "missing_text")
            else:
                fold = cross_fit_fold(str(row.get("id")), len(classifiers))
                groups.setdefault(fold, []).append(row)
        for fold, rows in sorted(groups.items()):
            yield from self._score(classifiers[fold], rows)

    def _score(self, classifier, rows):
        try:
            scores = classifier.score([r["text"] for r in rows])
        except Exception:  # noqa: BLE001 - fall back to one by one, rejecting only the rows that fail
            scores = []
            for r in rows:
                try:
                    scores.append(classifier.score([r["text"]])[0])
                except Exception as exc:  # noqa: BLE001
                    scores.append(exc)
        for row, score in zip(rows, scores):
            if isinstance(score, Exception):
                yield self._reject(row, "score_error", repr(score))
                continue
            if not row["text"].strip():
                count(NAMESPACE, "empty_text")
            count(NAMESPACE, "scored")
            yield {**row, "math_score": float(score)}


class ScoreWithClassifier(beam.PTransform):
    """Rows -> ``{"scored": rows with math_score, "rejects": REJECT_SCHEMA rows}``."""

    def __init__(self, model_path: str | Sequence[str], batch_size: int = 256, max_tokens: int = DEFAULT_MAX_TOKENS):
        super().__init__()
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    def expand(self, rows):
        out = (
            rows
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
            | "Score" >> beam.ParDo(ScoreBatchFn(self.model_path, shared.Shared(), self.max_tokens))
            .with_outputs(REJECTS, main="scored")
        )
        return {"scored": out.scored, "rejects": out[REJECTS]}
