"""``python -m pipeline.dedup --input DIR_OR_GLOB --output DIR [Beam options]``: see ``pipeline.dedup.pipeline``."""
from __future__ import annotations

import json
import logging
import sys

from pipeline.dedup.pipeline import run


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = run(sys.argv[1:] if argv is None else argv)
    print(json.dumps({k: summary[k] for k in ("counts", "cluster_size_histogram", "components") if k in summary},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
