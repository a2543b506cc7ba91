"""``python -m pipeline.rounds --pool DIR --seed SEED --output DIR [options]``: see ``pipeline.rounds.pipeline``."""
from __future__ import annotations

import logging
import sys

from pipeline.rounds.pipeline import run


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    summary = run(sys.argv[1:] if argv is None else argv)
    if not summary.get("dry_run"):
        for r in summary["rounds"]:
            print(f"round {r['round']}: threshold {r['threshold']:.6f}, recalled {r['recalled']} pages / "
                  f"{r['recalled_tokens']} tokens, overlap {r['overlap_with_previous']}, "
                  f"math domains {r['math_domains']}, new positives {r['new_positives']}")
        print(summary["stop_reason"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
