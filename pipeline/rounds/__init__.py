"""Recall rounds (DeepSeekMath section 2.1, steps 2-5): train the fastText math classifier, recall
the top of the pool by token budget (``budget``), discover math domains and URL paths
(``discovery``), add the missed pages as positives, repeat until recall saturates. The Beam jobs
are in ``transforms``, the loop in ``pipeline.run``, the reports in ``report``.

CLI: ``python -m pipeline.rounds --pool DIR --seed SEED --output DIR [options] [Beam options]``.
"""
from pipeline.rounds.pipeline import run

__all__ = ["run"]
