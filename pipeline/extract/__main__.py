"""``python -m pipeline.extract --input GLOB [--input GLOB ...] --output DIR [options]``: see ``pipeline.py``."""
from __future__ import annotations

import json
import logging
import sys

from pipeline.extract.pipeline import run


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = run(sys.argv[1:] if argv is None else argv)
    keys = ("files", "records_read", "pages_read", "pages_kept", "pages_rejected", "rejected", "file_errors",
            "wall_time_s", "pages_per_s", "dry_run")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
