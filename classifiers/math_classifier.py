"""``MathClassifier``: a trained fastText model that gives each text its probability of being math.

The model is a two-label fastText supervised model (``__label__math`` / ``__label__other``)
trained by ``classifiers.train`` on texts passed through ``classifiers.normalize``; scoring
applies the same normalisation, so training and scoring see the same tokens.

Guarantees of ``score``: one float in [0, 1] per input text, in input order. fastText's
softmax reports probabilities as ``exp(log(p + 1e-5))``, so they can exceed 1 by 1e-5: they
are clipped. A text with no tokens (empty, or only separators) scores 0.0, since fastText
has nothing to predict from. Texts are scored in batches through fastText's multi-line
predict, which is several times faster than a Python loop of single predictions (see
``benchmarks/classify.py``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence

import fasttext
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from classifiers.fasttext_worker import MATH_LABEL, OTHER_LABEL, predict_math
from classifiers.normalize import DEFAULT_MAX_TOKENS, normalize_text

LABELS = (MATH_LABEL, OTHER_LABEL)


def local_copy(path: str) -> tuple[str, bool]:
    """A local file path holding ``path``'s bytes: the path itself when local, else a temporary
    copy (the flag says whether the caller must delete it). fastText only loads local files."""
    if "://" not in path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no model file at {path}")
        return path, False
    fd, tmp = tempfile.mkstemp(suffix=".bin", prefix="math-classifier-")
    with os.fdopen(fd, "wb") as out, FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
        shutil.copyfileobj(src, out, length=16 * 1024 * 1024)
    return tmp, True


class MathClassifier:
    """A loaded math classifier. Load once per process (it is large: (vocabulary + buckets) x dim floats)."""

    def __init__(self, model: fasttext.FastText._FastText, path: str = "", max_tokens: int | None = DEFAULT_MAX_TOKENS):
        labels = set(model.get_labels())
        if MATH_LABEL not in labels:
            raise ValueError(f"model {path!r} has no {MATH_LABEL} label (labels: {sorted(labels)})")
        self.model = model
        self.path = path
        self.max_tokens = max_tokens

    @classmethod
    def load(cls, path: str, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> MathClassifier:
        """Load a model written by ``classifiers.train`` from a local path or a ``gs://``/``s3://`` URL."""
        local, is_temporary = local_copy(path)
        try:
            model = fasttext.load_model(local)
        finally:
            if is_temporary:
                os.remove(local)
        return cls(model, path=path, max_tokens=max_tokens)

    def score_normalized(self, lines: Sequence[str]) -> list[float]:
        """Probabilities of math for texts already passed through ``normalize_text``."""
        return predict_math(self.model, list(lines))

    def score(self, texts: Sequence[str]) -> list[float]:
        """The probability that each text is math, in [0, 1], in input order."""
        return self.score_normalized([normalize_text(t or "", self.max_tokens) for t in texts])
