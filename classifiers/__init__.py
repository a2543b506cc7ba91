"""Text classifiers of the corpus pipeline: the fastText math classifier (``MathClassifier``) and
the one text normalisation it is trained and scored with (``normalize_text``)."""
import pipeline  # noqa: F401  (first: imports Beam without its import-time apitools notice)
from classifiers.math_classifier import MathClassifier
from classifiers.normalize import normalize_text

__all__ = ["MathClassifier", "normalize_text"]
