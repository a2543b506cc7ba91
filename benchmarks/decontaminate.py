"""Benchmark of the decontamination stage against the common naive approach, in one run.

Peer ("naive 13-gram set", as in many decontamination scripts): lower-case, split on
whitespace, a Python ``set`` of the raw 13-gram strings of every benchmark text; a page is
contaminated if any of its 13-grams is in the set.

Measured on the bundled default benchmarks and on real pages of the shared test data (the 36
labelled math pages as the extract stage gives them (formulas as TeX), the 30 Common
Crawl documents, and the six planted leaks of the tests),
repeated to get stable timings:

- index build time, distinct n-grams, memory (ours: ``BenchmarkIndex.memory_bytes``; peer:
  tracemalloc of the set), size on disk (ours);
- pages/s on one core for matching alone, and for the whole Beam stage (in-process runner,
  one worker, Parquet in and out);
- planted leaks caught (of 6) and clean pages removed (of 66).

    python benchmarks/decontaminate.py [--repeat 20] [--skip_beam]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "pipeline" / "decontaminate"))

from decontam_helpers import cc_texts, make_leaks, math_html_texts

from pipeline.decontaminate.benchmarks_spec import parse_specs, read_texts
from pipeline.decontaminate.index import build_index
from pipeline.decontaminate.normalize import tokenize
from pipeline.paths import shared_data_dir


def naive_build(texts: list[str], n: int = 13) -> set[str]:
    grams: set[str] = set()
    for text in texts:
        words = text.lower().split()
        grams.update(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams


def naive_contaminated(grams: set[str], text: str, n: int = 13) -> bool:
    words = text.lower().split()
    return any(" ".join(words[i : i + n]) in grams for i in range(len(words) - n + 1))


def beam_pages_per_second(pages: list[str], index, repeat: int) -> float:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.decontaminate.pipeline import run
    from pipeline.schema import DOCUMENT_SCHEMA

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for r in range(repeat):
            for i, text in enumerate(pages):
                url = f"https://bench.example/{r}/{i}"
                rows.append({"id": hashlib.sha1(f"{url}\n{text}".encode()).hexdigest(), "url": url, "text": text})
        table = pa.Table.from_pylist([{n: row.get(n) for n in DOCUMENT_SCHEMA.names} for row in rows], DOCUMENT_SCHEMA)
        Path(tmp, "in").mkdir()
        pq.write_table(table, Path(tmp, "in", "pages.parquet"))
        index.save(str(Path(tmp, "index.npz")))
        args = ["--input", f"{tmp}/in", "--output", f"{tmp}/out", "--index", f"{tmp}/index.npz"]
        t0 = time.perf_counter()
        summary = run([*args, "--runner=FnApiRunner", "--direct_num_workers=1"])
        seconds = time.perf_counter() - t0
        assert summary["pages"]["in"] == len(rows)
        return len(rows) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="how many times the page set is matched")
    parser.add_argument("--skip_beam", action="store_true", help="skip the end-to-end Beam measurement")
    args = parser.parse_args()
    shared = shared_data_dir()
    if shared is None:
        sys.exit("needs the shared test data (../shared/data or $DSM_SHARED_DATA)")

    specs = parse_specs(None)
    raw_texts = [bt.text for spec in specs for bt in read_texts(spec)]

    t0 = time.perf_counter()
    index = build_index(specs)
    ours_build = time.perf_counter() - t0
    ours_disk = len(index.to_bytes())

    tracemalloc.start()
    t0 = time.perf_counter()
    naive = naive_build(raw_texts)
    naive_build_s = time.perf_counter() - t0
    naive_mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    clean = math_html_texts(shared) + cc_texts(shared)
    leaks = make_leaks(shared)
    pages = [t for _, t in clean] + [leak.text for leak in leaks]

    def ours_hit(text: str) -> bool:
        return bool(index.find(tokenize(text)))

    timings = {}
    for name, hit in (("ours", ours_hit), ("naive", lambda t: naive_contaminated(naive, t))):
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            for text in pages:
                hit(text)
        timings[name] = len(pages) * args.repeat / (time.perf_counter() - t0)

    ours_leaks = sum(
        any((m.benchmark, m.item_id) == (lk.benchmark, lk.item_id) for m in index.find(tokenize(lk.text)))
        for lk in leaks
    )
    naive_leaks = sum(naive_contaminated(naive, lk.text) for lk in leaks)
    ours_fp = sum(ours_hit(t) for _, t in clean)
    naive_fp = sum(naive_contaminated(naive, t) for _, t in clean)
    beam_rate = None if args.skip_beam else beam_pages_per_second(pages, index, args.repeat)

    mib = 1024 * 1024
    rows = [
        ("index build time (s)", f"{ours_build:.1f}", f"{naive_build_s:.1f}"),
        (
            "indexed n-grams",
            (
                f"{index.stats.ngrams:,} (n=10) + {index.stats.short_texts} short + "
                f"{index.stats.whole_texts} long texts matched whole"
            ),
            f"{len(naive):,} (n=13)",
        ),
        ("index memory (MiB)", f"{index.memory_bytes / mib:.1f}", f"{naive_mem / mib:.1f}"),
        ("index file (MiB)", f"{ours_disk / mib:.1f}", "-"),
        ("matching, pages/s/core", f"{timings['ours']:.0f}", f"{timings['naive']:.0f}"),
        ("Beam stage end to end, pages/s (1 worker)", "-" if beam_rate is None else f"{beam_rate:.0f}", "-"),
        ("planted leaks caught (of 6)", str(ours_leaks), str(naive_leaks)),
        (f"clean real pages removed (of {len(clean)})", str(ours_fp), str(naive_fp)),
    ]
    mean_chars = sum(len(p) for p in pages) / len(pages)
    print(
        f"pages: {len(pages)} real pages x {args.repeat} (mean {mean_chars:,.0f} chars); "
        f"benchmarks: {len(raw_texts):,} texts of {', '.join(s.name for s in specs)}\n"
    )
    print("| measure | ours (normalised 10-grams, hashed) | naive raw 13-gram set |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
