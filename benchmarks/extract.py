"""Benchmark: math-preserving extraction (``pipeline.extract.html_math``) vs plain trafilatura.

On the real HTML pages of ``shared/data/html`` it measures, for both extractors in the same run:

* throughput: pages per CPU-second (one core) and MB of HTML per CPU-second;
* formula retention on the math pages: the share of the formulas found in each page's
  *source* by the independent finder (``pipeline.extract.math_reference``) that appear as
  math in the output (whitespace- and brace-insensitive);
* main-text precision and recall against the reference main texts of ``main_text.jsonl``
  (65 readability pages), as bags of words (CJK characters count one by one; TeX control
  words such as ``\\frac`` are markup and not counted), micro-averaged over words;
* retention on a held-out part: the math pages whose sha256 starts with ``c``-``f`` were not
  looked at while the renderer-reading step (``math_renderer``) was written;
* retention by origin: the same measure split by where the finder found each formula;
* formulas by source (``Extracted.formula_sources``: the mechanism or delimiter kind that
  gave each formula in the output), summed over the math pages;
* code blocks: every ``<pre>`` with at least two non-blank lines in the pages' source (found
  by a regex, not the extractor's tree); one is kept when all its lines, indentation
  included, appear in order inside one fenced block of the output (for plain trafilatura,
  which writes no fences: anywhere in the text, one per line);
* the same on prose only ("P/R (prose)"): the math spans (``$..$``, ``$$..$$``, ``\\(..\\)``,
  ``\\[..\\]``, environments) removed from the output and the reference first, since some
  references render formulas as glyph text or leave them out, so kept formulas count as
  false positives there.

Usage::

    python -m benchmarks.extract [--data DIR] [--repeat N] [--per-page] [--plot retention.png]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.extract.html_math import extract_main_text
from pipeline.extract.math_reference import find_source_formulas, retention, strip_output_math
from pipeline.paths import shared_data_dir

_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+", re.UNICODE)


_TEX_CONTROL_WORD = re.compile(r"\\[A-Za-z]+")


def bag_of_words(text: str) -> Counter:
    """Lower-cased word tokens (each CJK character is one token).

    TeX control words (``\\frac``, ``\\mathbf``) are markup, like HTML tags: the reference
    texts hold the rendered formula (its letters and digits), so they are not counted.
    """
    text = _TEX_CONTROL_WORD.sub(" ", text or "")
    return Counter(t.lower() for t in _TOKEN.findall(text))


HELD_OUT = tuple("cdef")  # first hex digit of the sha256 of the held-out math pages

_PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre\s*>", re.IGNORECASE | re.DOTALL)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LINE_END = re.compile(r"</(?:div|p|li|tr)\s*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^>]+>")
_FENCED = re.compile(r"^(```|~~~)\n(.*?)\n\1$", re.MULTILINE | re.DOTALL)


def source_code_blocks(page_html: str) -> list[list[str]]:
    """The lines (right-stripped, indentation kept) of each ``<pre>`` with >= 2 non-blank lines."""
    import html as html_lib

    blocks = []
    for m in _PRE.finditer(page_html):
        body = _LINE_END.sub("\n", _BR.sub("\n", m.group(1)))
        text = html_lib.unescape(_ANY_TAG.sub("", body))
        lines = [line.rstrip() for line in text.split("\n") if line.strip()]
        if len(lines) >= 2:
            blocks.append(lines)
    return blocks


def _lines_in_order(lines: list[str], haystack: list[str]) -> bool:
    pos = 0
    for line in lines:
        try:
            pos = haystack.index(line, pos) + 1
        except ValueError:
            return False
    return True


def code_kept(blocks: list[list[str]], text: str, fenced: bool) -> int:
    """How many of ``blocks`` the output keeps intact (inside one fence when ``fenced``)."""
    if fenced:
        hays = [[ln.rstrip() for ln in m.group(2).split("\n") if ln.strip()] for m in _FENCED.finditer(text)]
    else:
        hays = [[ln.rstrip() for ln in text.split("\n") if ln.strip()]]
    return sum(1 for b in blocks if any(_lines_in_order(b, h) for h in hays))


def plain_trafilatura(html: str) -> str:
    return trafilatura.extract(html) or ""




def ours(html: str) -> str:
    result = extract_main_text(html)
    ours.last_sources = result.formula_sources
    return result.text


ours.last_sources = {}


EXTRACTORS = {"trafilatura (plain)": plain_trafilatura, "html_math (ours)": ours}


@dataclass
class Result:
    cpu_s: float = 0.0
    pages: int = 0
    bytes: int = 0
    formulas: int = 0
    kept: int = 0
    overlap: int = 0
    out_words: int = 0
    ref_words: int = 0
    prose_overlap: int = 0  # the same, with the math removed from the output and the reference
    prose_out_words: int = 0
    prose_ref_words: int = 0
    per_page: dict[str, tuple[int, int]] = field(default_factory=dict)
    held_formulas: int = 0
    held_kept: int = 0
    code_blocks: int = 0
    code_kept: int = 0
    sources: Counter = field(default_factory=Counter)
    origin_total: Counter = field(default_factory=Counter)  # source formulas by the finder's origin
    origin_kept: Counter = field(default_factory=Counter)


def load_pages(data: Path) -> tuple[list[dict], dict[str, str]]:
    rows = [json.loads(line) for line in (data / "html" / "pages.jsonl").open(encoding="utf-8")]
    refs = {}
    for line in (data / "html" / "main_text.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        refs[row["file"]] = row["main_text"]
    return rows, refs


def run(data: Path, repeat: int) -> tuple[dict[str, Result], list[dict]]:
    rows, refs = load_pages(data)
    htmls = {r["file"]: (data / r["file"]).read_bytes().decode("utf-8", errors="replace") for r in rows}
    sources = {f: find_source_formulas(h) for f, h in htmls.items() if f.startswith("html/math/")}
    code = {f: source_code_blocks(h) for f, h in htmls.items()}
    results = {name: Result() for name in EXTRACTORS}
    for fn in EXTRACTORS.values():  # warm-up: one-time set-up (imports, stylesheet, grammar)
        for row in rows:
            fn(htmls[row["file"]])
    for name, fn in EXTRACTORS.items():
        res = results[name]
        for row in rows:
            html = htmls[row["file"]]
            start = time.process_time()
            for _ in range(repeat):
                text = fn(html)
            res.cpu_s += (time.process_time() - start) / repeat
            res.pages += 1
            res.bytes += len(html.encode("utf-8"))
            if row["file"] in sources and row["label"] == "math":
                kept, lost = retention(sources[row["file"]], text)
                lost_ids = {id(f) for f in lost}
                for f in sources[row["file"]]:
                    res.origin_total[f.origin] += 1
                    res.origin_kept[f.origin] += id(f) not in lost_ids
                res.formulas += len(sources[row["file"]])
                res.kept += kept
                res.per_page[row["file"]] = (kept, len(sources[row["file"]]))
                if row["sha256"][0] in HELD_OUT:
                    res.held_formulas += len(sources[row["file"]])
                    res.held_kept += kept
                if fn is ours:
                    res.sources.update(ours.last_sources)
            if code[row["file"]]:
                res.code_blocks += len(code[row["file"]])
                res.code_kept += code_kept(code[row["file"]], text, fenced=fn is ours)
            if row["file"] in refs:
                out, ref = bag_of_words(text), bag_of_words(refs[row["file"]])
                res.overlap += sum((out & ref).values())
                res.out_words += sum(out.values())
                res.ref_words += sum(ref.values())
                out, ref = bag_of_words(strip_output_math(text)), bag_of_words(strip_output_math(refs[row["file"]]))
                res.prose_overlap += sum((out & ref).values())
                res.prose_out_words += sum(out.values())
                res.prose_ref_words += sum(ref.values())
    return results, rows


def print_table(results: dict[str, Result]) -> None:
    base = results["trafilatura (plain)"]
    header = (
        f"{'extractor':22s} {'pages':>5s} {'pages/s/core':>12s} {'MB/s':>6s} {'speed vs plain':>14s} "
        f"{'formula retention':>18s} {'held-out':>16s} {'code blocks':>12s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'P (prose)':>9s} {'R (prose)':>9s}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        pps = r.pages / r.cpu_s
        mbs = r.bytes / 1e6 / r.cpu_s
        prec = r.overlap / max(1, r.out_words)
        rec = r.overlap / max(1, r.ref_words)
        f1 = 2 * prec * rec / max(1e-9, prec + rec)
        ret = f"{r.kept}/{r.formulas} = {r.kept / max(1, r.formulas):.1%}"
        held = f"{r.held_kept}/{r.held_formulas} = {r.held_kept / max(1, r.held_formulas):.1%}"
        code = f"{r.code_kept}/{r.code_blocks}"
        print(
            f"{name:22s} {r.pages:5d} {pps:12.1f} {mbs:6.2f} {pps / (base.pages / base.cpu_s):13.2f}x "
            f"{ret:>18s} {held:>16s} {code:>12s} {prec:9.3f} {rec:7.3f} {f1:6.3f} "
            f"{r.prose_overlap / max(1, r.prose_out_words):9.3f} {r.prose_overlap / max(1, r.prose_ref_words):9.3f}"
        )


def print_sources(results: dict[str, Result]) -> None:
    print("\nretention by where the formula is in the source (the finder's origin)")
    names = list(results)
    print(f"  {'origin':24s} " + " ".join(f"{n[:18]:>18s}" for n in names))
    for origin, total in results[names[-1]].origin_total.most_common():
        print(f"  {origin:24s} " + " ".join(f"{results[n].origin_kept[origin]:>9d}/{total:<8d}" for n in names))
    sources = results["html_math (ours)"].sources
    print(f"\nformulas in our output on the math pages, by source ({sum(sources.values())} in all)")
    for name, n in sources.most_common():
        print(f"  {name:24s} {n:6d}")


def print_per_page(results: dict[str, Result]) -> None:
    names = list(results)
    print(f"\n{'math page':62s} " + " ".join(f"{n[:18]:>18s}" for n in names))
    for page in sorted(results[names[0]].per_page):
        cells = []
        for n in names:
            kept, total = results[n].per_page[page]
            cells.append(f"{kept:>8d}/{total:<9d}")
        print(f"{page.split('/')[-1][:62]:62s} " + " ".join(cells))


def plot(results: dict[str, Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    pages = sorted(results[names[0]].per_page)
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(pages) + 1.5))
    height = 0.8 / len(names)
    for i, n in enumerate(names):
        shares = [results[n].per_page[p][0] / max(1, results[n].per_page[p][1]) for p in pages]
        ax.barh([k + i * height for k in range(len(pages))], shares, height=height, label=n)
    ax.set_yticks([k + height / 2 for k in range(len(pages))])
    ax.set_yticklabels([p.split("/")[-1][:45] for p in pages], fontsize=7)
    ax.set_xlabel("share of the page's source formulas kept")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    parser.add_argument("--repeat", type=int, default=1, help="extractions per page for timing")
    parser.add_argument("--per-page", action="store_true", help="print formula retention per math page")
    parser.add_argument("--plot", type=Path, help="write a per-page retention bar chart (PNG)")
    args = parser.parse_args(argv)
    if args.data is None or not (args.data / "html").is_dir():
        print("shared data (../shared/data/html) not found; pass --data", file=sys.stderr)
        return 2
    results, _ = run(args.data, args.repeat)
    print_table(results)
    print_sources(results)
    if args.per_page:
        print_per_page(results)
    if args.plot:
        plot(results, args.plot)
        print(f"\nwrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
