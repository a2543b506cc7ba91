"""Rebuild the bundled sample data from ../shared/data (run once; the outputs are committed).

- data/sample/warc/: three real Common Crawl / wget WARC files copied byte for byte, plus
  ``labelled_pages.warc.gz``: the labelled math and non-math HTML pages of
  ``shared/data/html`` wrapped into WARC response records (URL: the page's original URL where
  known, else the upstream file's GitHub URL; WARC-Date fixed so the file is reproducible).
- data/benchmarks/: the benchmark test splits used for decontamination and evaluation, gzipped.
- data/seed/: a small seed corpus of math text for the sample run's first classifier
  (MATH and GSM8K *training* solutions; real runs use OpenWebMath).
"""
from __future__ import annotations

import gzip
import io
import json
import random
import shutil
import sys
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ROOT = Path(__file__).resolve().parent
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent.parent / "shared" / "data"

COPY_WARCS = [
    "warc/commoncrawl/resiliparse__warcfile.warc.gz",
    "warc/commoncrawl/whirlwind__whirlwind.warc.gz",
    "warc/commoncrawl/whirlwind__whirlwind.warc.wet.gz",
    "warc/other_crawls/dolma__sample-0000.warc.gz",
]
BENCHMARKS = [
    "gsm8k/test.jsonl",
    "math/MATH_test.jsonl",
    "cmath/test.jsonl",
    "agieval_gaokao/gaokao-mathqa.jsonl",
    "agieval_gaokao/gaokao-mathcloze.jsonl",
]
NONMATH_PAGES = 40  # keep the sample small: every math page, the first 40 non-math pages


def build_labelled_warc(out: Path) -> int:
    rows = [json.loads(line) for line in open(SHARED / "html" / "pages.jsonl", encoding="utf-8")]
    math_rows = [r for r in rows if r["file"].startswith("html/math/")]
    nonmath_rows = sorted((r for r in rows if r["file"].startswith("html/nonmath/")), key=lambda r: r["file"])
    chosen = math_rows + nonmath_rows[:NONMATH_PAGES]
    with open(out, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for r in chosen:
            body = (SHARED / r["file"]).read_bytes()
            url = r["url"] or f"https://github.com/{r['source_repo']}/blob/{r['source_commit']}/{r['source_path']}"
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                    protocol="HTTP/1.1")
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                               warc_headers_dict={"WARC-Date": "2024-01-01T00:00:00Z"})
            writer.write_record(record)
    return len(chosen)


def main() -> None:
    warc_dir = ROOT / "sample" / "warc"
    warc_dir.mkdir(parents=True, exist_ok=True)
    for rel in COPY_WARCS:
        shutil.copyfile(SHARED / rel, warc_dir / Path(rel).name)
    n = build_labelled_warc(warc_dir / "labelled_pages.warc.gz")
    print(f"labelled_pages.warc.gz: {n} pages")
    bench_dir = ROOT / "benchmarks"
    for rel in BENCHMARKS:
        dest = bench_dir / (rel + ".gz")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(SHARED / "benchmarks" / rel, "rb") as src, gzip.GzipFile(dest, "wb", mtime=0) as dst:
            shutil.copyfileobj(src, dst)
    rng = random.Random(0)
    seed_rows = []
    math_train = [json.loads(line) for line in open(SHARED / "benchmarks/math/MATH_train.jsonl", encoding="utf-8")]
    for item in rng.sample(math_train, 1500):
        seed_rows.append({"text": item["problem"] + "\n\n" + item["solution"], "source": "MATH/train/" + item["unique_id"]})
    gsm_train = [json.loads(line) for line in open(SHARED / "benchmarks/gsm8k/train.jsonl", encoding="utf-8")]
    for i in sorted(rng.sample(range(len(gsm_train)), 1500)):
        item = gsm_train[i]
        seed_rows.append({"text": item["question"] + "\n\n" + item["answer"], "source": f"gsm8k/train/{i}"})
    with gzip.GzipFile(ROOT / "seed" / "math_seed.jsonl.gz", "wb", mtime=0) as fh:
        for row in seed_rows:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"seed: {len(seed_rows)} rows")


if __name__ == "__main__":
    main()
