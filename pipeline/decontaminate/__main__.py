"""``python -m pipeline.decontaminate --input DIR --output DIR [--benchmarks SPEC ...] [--ngram 10] [Beam options]``."""

from __future__ import annotations

import json
import logging
import sys

from pipeline.decontaminate.pipeline import run


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = run(sys.argv[1:] if argv is None else argv)
    print(
        json.dumps(
            {k: summary.get(k) for k in ("pages", "per_benchmark", "skipped", "dry_run") if k in summary}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
