"""Score stage: adds ``math_score`` with the fastText math classifier (``transforms.ScoreWithClassifier``);
the job is ``pipeline.run``.

CLI: ``python -m pipeline.score --model model.bin --input DIR --output DIR [Beam options]``.
"""
from pipeline.score.pipeline import run

__all__ = ["run"]
