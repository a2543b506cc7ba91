"""Corpus precision and recall of the whole chain on labelled, math-sparse pools:
``python -m benchmarks.corpus_quality [--shares 0.01,0.04,0.2] [--work DIR]``.

Each pool is built from ``../shared/data``: the labelled math pages (``label == "math"``), the
labelled non-math pages, and every HTML page of the real crawls (Common Crawl, wget, Heritrix:
all non-math), wrapped into one WARC file; borderline pages and fragments are left out. The
math share is set by how many math pages join (chosen by a hash of the file name, so the pools
are nested and reproducible); distinct URLs only.

On each pool ``pipeline.run`` runs end to end with its defaults (the calibrated cut, up to 4
rounds, the bundled seed), once per extraction tier (``--tiers``: the two-tier default ``fast``
and the single-tier ``precise``), and the table prints, per pool and tier:
- corpus precision and recall (the ``corpus`` stage's rows against the labels);
- the recalled set of each round (round 1 alone is the single-round classifier);
- the paper's fixed-budget cut on the same dedup output (``pipeline.rounds --token-budget``,
  default 50,000 tokens, the sample config's old value), at the rounds' output.
Recall is over the math pages that reached the dedup output (a page removed as a near
duplicate of another is not a miss of the classifier).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.extract.warc_reader import PageRecord, read_archive
from pipeline.paths import REPO_ROOT

SHARED = Path(os.environ.get("DSM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
CRAWLS = ["warc/commoncrawl/resiliparse__warcfile.warc.gz", "warc/commoncrawl/jwarc__cc.warc.gz",
          "warc/commoncrawl/whirlwind__whirlwind.warc.gz", "warc/other_crawls/dolma__sample-0000.warc.gz",
          "warc/other_crawls/dolma__sample-0001.warc.gz",
          "warc/other_crawls/jwat__IAH-20080430204825-00000-blackbook.warc.gz",
          "warc/other_crawls/webarchive-commons__IAH-urls-wget.warc.gz"]


def _key(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def labelled_pages(shared: Path) -> list[dict]:
    """``{url, body, label}`` of the labelled math and non-math HTML pages."""
    out = []
    for line in open(shared / "html" / "pages.jsonl", encoding="utf-8"):
        page = json.loads(line)
        if page["label"] not in ("math", "nonmath"):
            continue
        url = page["url"] or f"https://github.com/{page['source_repo']}/blob/{page['source_commit']}/{page['source_path']}"
        out.append({"url": url, "body": (shared / page["file"]).read_bytes(), "label": page["label"],
                    "key": _key(page["file"])})
    return out


def crawl_pages(shared: Path) -> list[dict]:
    """``{url, body, label: "nonmath"}`` of the HTML responses of the real crawls."""
    out = []
    for rel in CRAWLS:
        for record in read_archive(str(shared / rel)):
            if isinstance(record, PageRecord) and record.source_format == "html" and record.url:
                out.append({"url": record.url, "body": record.payload, "label": "nonmath", "key": _key(record.url)})
    return out


def build_pool(shared: Path, math_share: float, path: Path) -> dict[str, str]:
    """Write the pool's WARC to ``path``; returns ``{url: label}``."""
    pages = labelled_pages(shared) + crawl_pages(shared)
    seen, nonmath, math = set(), [], []
    for p in sorted(pages, key=lambda p: p["key"]):
        if p["url"] in seen:
            continue
        seen.add(p["url"])
        (math if p["label"] == "math" else nonmath).append(p)
    n_math = max(1, min(len(math), round(math_share * len(nonmath) / (1 - math_share))))
    chosen = nonmath + math[:n_math]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for p in chosen:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(p["body"])))],
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(p["url"], "response", payload=io.BytesIO(p["body"]),
                                                          http_headers=http,
                                                          warc_headers_dict={"WARC-Date": "2024-01-01T00:00:00Z"}))
    return {p["url"]: p["label"] for p in chosen}


def _urls(folder: Path) -> set[str]:
    """URLs of a stage's pages (``<stage>/data/``, or a folder of shards such as ``recalled/``)."""
    files = sorted((folder / "data").glob("*.parquet")) or sorted(folder.glob("*.parquet"))
    return {u for f in files for u in pq.read_table(f, columns=["url"]).column(0).to_pylist()}


def precision_recall(selected: set[str], labels: dict[str, str], reachable: set[str]) -> tuple[float, float, int, int]:
    """(precision, recall, math pages selected, math pages reachable) of a selected URL set."""
    math = {u for u in reachable if labels.get(u) == "math"}
    tp = len(selected & math)
    fp = len({u for u in selected if labels.get(u) == "nonmath"})
    return (tp / (tp + fp) if tp + fp else 0.0, tp / len(math) if math else 0.0, tp, len(math))


def tier_config(tier: str, path: Path) -> Path:
    """The bundled sample config with the extract stage's ``tier`` set, written to ``path``."""
    import yaml

    from pipeline.run import SAMPLE_CONFIG

    config = yaml.safe_load(SAMPLE_CONFIG.read_text()) or {}
    config.setdefault("extract", {})["tier"] = tier
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def run_pool(share: float, work: Path, budget: int, runner: list[str], tier: str = "fast") -> list[dict]:
    from pipeline.rounds import run as run_rounds
    from pipeline.run import run as run_chain

    folder = work / f"share-{share:g}-{tier}"
    shutil.rmtree(folder, ignore_errors=True)
    labels = build_pool(SHARED, share, folder / "pool.warc.gz")
    started = time.time()
    run_chain(["--config", str(tier_config(tier, folder / "run.yaml")), "--input", str(folder / "pool.warc.gz"),
               "--output", str(folder / "out"), *runner])
    seconds = time.time() - started
    out = folder / "out"
    reachable = _urls(out / "dedup")
    rows = []
    summary = json.loads((out / "rounds" / "summary.json").read_text())
    for r in summary["rounds"]:
        p, rec, tp, m = precision_recall(_urls(out / "rounds" / f"round_{r['round']}" / "recalled"), labels, reachable)
        rows.append({"pool": f"{share:.0%}", "tier": tier, "what": f"round {r['round']}" + (" (single-round classifier)" if r["round"] == 1 else ""),
                     "precision": p, "recall": rec, "math": f"{tp}/{m}",
                     "est_p": r.get("estimated_precision"), "est_r": r.get("estimated_recall"),
                     "new_share": r.get("new_share")})
    p, rec, tp, m = precision_recall(_urls(out / "corpus"), labels, reachable)
    rows.append({"pool": f"{share:.0%}", "tier": tier, "what": f"corpus (defaults, {len(summary['rounds'])} rounds, {seconds:.0f}s)",
                 "precision": p, "recall": rec, "math": f"{tp}/{m}"})
    seed = str(REPO_ROOT / "data" / "seed" / "math_seed.jsonl.gz")
    run_rounds(["--pool", str(out / "dedup"), "--seed", seed, "--output", str(folder / "budget"),
                "--token-budget", str(budget), *runner])
    p, rec, tp, m = precision_recall(_urls(folder / "budget" / "recalled"), labels, reachable)
    rows.append({"pool": f"{share:.0%}", "tier": tier, "what": f"fixed budget {budget:,} tokens (rounds output)",
                 "precision": p, "recall": rec, "math": f"{tp}/{m}"})
    return rows


def _fmt(x) -> str:
    return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.corpus_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shares", default="0.01,0.04,0.2", help="math shares of the pools")
    parser.add_argument("--work", default="out/bench_corpus_quality")
    parser.add_argument("--budget", type=int, default=50_000)
    parser.add_argument("--tiers", default="fast,precise",
                        help="extract tiers to compare (fast: the two-tier default; precise: one tier)")
    args = parser.parse_args(argv)
    if not (SHARED / "html" / "pages.jsonl").exists():
        sys.exit(f"skipped: the shared test data is not at {SHARED} (set DSM_SHARED_DATA)")
    runner = ["--runner=FnApiRunner"]
    rows = []
    for share in (float(s) for s in args.shares.split(",")):
        for tier in args.tiers.split(","):
            rows += run_pool(share, Path(args.work), args.budget, runner, tier)
    cols = ["pool", "tier", "what", "precision", "recall", "math", "est_p", "est_r", "new_share"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    (Path(args.work) / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
