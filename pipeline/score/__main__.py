"""``python -m pipeline.score --model model.bin --input DIR --output DIR [Beam options]``: see ``pipeline.score.pipeline``."""
from __future__ import annotations

import json
import logging
import sys

from pipeline.score.pipeline import run


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    summary = run(sys.argv[1:] if argv is None else argv)
    print(json.dumps({k: summary.get(k) for k in ("rows_in", "rows_out", "rejected_by_reason", "score_histogram")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
