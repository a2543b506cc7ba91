"""Answer checking: ``training.answers`` against Math-Verify used as TRL/verl use it, in one run.

    python benchmarks/answer_check.py [--limit 1000] [--threads 4]

On the bundled MATH test split (and GSM8K), for each problem:

- *right*: a Minerva-style completion whose final answer is the gold answer reformatted
  (``\\dfrac``, ``\\left(``, spaces after commas, ``$...$``) must be accepted;
- *wrong*: the gold answer of another problem (with a different normalised form) must be
  rejected.

Checkers: ours (``math_reward``); Math-Verify with its defaults (``parse`` + ``verify``,
``signal.alarm`` timeouts) called from the main thread; and the same Math-Verify call made from
worker threads (as a reward function running in a thread pool does), where its signal-based
timeout cannot work. Prints accuracy and microseconds per check as a table. Ours caches parsed
answers within a run (cleared between runs); threads do not speed up sympy (the GIL), they show
that the verdicts stay right.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.paths import BENCHMARK_DIR
from training.answers import gold_answer, math_reward, normalize_answer


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _reformat(gold: str) -> str:
    text = gold.replace("\\frac", "\\dfrac").replace(",", ", ").replace("(", "\\left(").replace(")", "\\right)")
    return f"${text}$"


def build_cases(limit: int, seed: int = 0) -> list[tuple[str, str, str, bool]]:
    """(benchmark, completion, gold, expected verdict) cases from MATH and GSM8K."""
    rng = random.Random(seed)
    cases = []
    for bench, rel in (("math", "math/MATH_test.jsonl.gz"), ("gsm8k", "gsm8k/test.jsonl.gz")):
        golds = [g for g in (gold_answer(r, bench) for r in _rows(BENCHMARK_DIR / rel)) if g]
        rng.shuffle(golds)
        for gold in golds[:limit]:
            cases.append((bench, (f"Reasoning.\nFinal Answer: The final answer is {_reformat(gold)}. "
                                 "I hope it is correct."), gold, True))
            other = rng.choice(golds)
            if normalize_answer(other) != normalize_answer(gold):
                cases.append((bench, (f"Reasoning.\nFinal Answer: The final answer is ${other}$. "
                                     "I hope it is correct."), gold, False))
    return cases


def mv_default(completion: str, gold: str) -> float:
    """Math-Verify as reward functions commonly call it (defaults: signal.alarm timeouts)."""
    from math_verify import parse, verify

    try:
        return float(verify(parse(f"${gold}$"), parse(completion)))
    except Exception:  # noqa: BLE001 - as reward functions wrap it
        return 0.0


def run_checker(name: str, fn, cases, threads: int = 0) -> dict:
    from training import answers

    answers._parse_latex.cache_clear()  # every run starts cold: no parses reused from the previous run
    start = time.perf_counter()
    args = [(c, g) if name != "ours" else (c, g, b) for b, c, g, _ in cases]
    if threads:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            verdicts = list(pool.map(lambda a: fn(*a), args))
    else:
        verdicts = [fn(*a) for a in args]
    seconds = time.perf_counter() - start
    right = [v for v, (*_, exp) in zip(verdicts, cases) if exp]
    wrong = [v for v, (*_, exp) in zip(verdicts, cases) if not exp]
    return {
        "checker": name,
        "right accepted": sum(v == 1.0 for v in right) / max(len(right), 1),
        "wrong rejected": sum(v == 0.0 for v in wrong) / max(len(wrong), 1),
        "us/check": 1e6 * seconds / max(len(cases), 1),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=1000, help="problems per benchmark")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # the threaded failures log one line each
    cases = build_cases(args.limit)
    n_right = sum(c[3] for c in cases)
    print(f"{len(cases)} cases ({n_right} right answers reformatted, {len(cases) - n_right} wrong answers), "
          f"MATH + GSM8K test, {args.limit} problems each\n")
    mv_default("$1$", "1")  # import and warm up outside the timings
    math_reward("$1$", "1")
    rows = [
        run_checker("ours", math_reward, cases),
        run_checker("ours", math_reward, cases, threads=args.threads),
        run_checker("math-verify default", mv_default, cases),
        run_checker("math-verify default", mv_default, cases, threads=args.threads),
    ]
    labels = ["main thread", f"{args.threads} threads", "main thread", f"{args.threads} threads"]
    print("| checker | where | right accepted | wrong rejected | us/check |")
    print("|---|---|---|---|---|")
    for row, where in zip(rows, labels):
        print(f"| {row['checker']} | {where} | {100 * row['right accepted']:.1f}% | "
              f"{100 * row['wrong rejected']:.1f}% | {row['us/check']:.0f} |")


if __name__ == "__main__":
    main()
