"""Rule-based answer checking shared by evaluation (Pass@K, Maj@K) and the RL rewards.

Method (as in DeepSeekMath's evaluation and GRPO rewards, section 5 of the paper: a rule checks
the final answer against the gold one):

1. **Extraction** (``extract_answer``): the last ``\\boxed{...}``/``\\fbox{...}`` with brace
   matching; else the Minerva marker "The final answer is X. I hope it is correct."; else
   "The answer is X" (also "答案是/答案为" for the Chinese benchmarks); else GSM8K's "#### X";
   for the numeric benchmarks (GSM8K, CMATH) the last number of the text as a last resort. For
   multiple choice (Gaokao MathQA) the option letters.
2. **Gold answers** (``gold_answer``): GSM8K ``#### n``; MATH the last box of the solution;
   CMATH ``golden``; Gaokao MathQA ``label``; Gaokao MathCloze ``answer``.
3. **Equivalence** (``answers_equal``), cheapest first: identical after a Minerva-style
   normalisation (``\\left/\\right``, ``\\dfrac``, ``\\text{}``/``\\mbox{}`` wrappers, units,
   degrees, ``\\%``, ``\\$``, thousands separators, ``x =`` prefixes, spacing); equal as
   numbers (fractions, decimals, percent, commas), exactly, or to the
   precision of a decimal written with at least four places (``0.3333`` = ``1/3``); else symbolic
   equality by Math-Verify (intervals, sets, tuples, matrices, sqrt, pi, equations).

Safety in threads and worker processes: Math-Verify's default timeout uses ``signal.alarm``,
which only works in the main thread (elsewhere it raises and Math-Verify silently answers
False: the bug that hit TRL and verl). Here its timeouts are switched off
(``parsing_timeout=None``, ``timeout_seconds=None``) and the cost is bounded instead by
(a) length caps on the answers, (b) refusing the symbolic path for inputs that can blow up
sympy (huge exponents, power towers, big factorials), and (c) a wall-clock budget enforced by
running the symbolic check in a daemon thread and waiting on it with a timeout. A check that
runs out of budget returns False and is counted in ``check_stats()``; the abandoned thread
finishes (or not) in the background and cannot block the caller.

Departures from the paper: the paper does not publish its checker; this follows the published
Minerva normalisation and Math-Verify, and accepts an answer given with or without units
(``5\\text{ inches}`` equals ``5``) and with or without a percent sign (``30\\%`` equals ``30``).
"""
from __future__ import annotations

import functools
import math
import re
import threading
from collections import Counter
from fractions import Fraction

# Longest answer string the checker compares symbolically (MATH's longest gold is ~80 chars).
MAX_ANSWER_CHARS = 400
# Longest answer string compared at all; longer "answers" are rambling, never a final answer,
# and would make the normalising regexes slow.
MAX_COMPARE_CHARS = 1000
# How many earlier boxes extract_boxed tries when the last one is malformed.
MAX_BOX_RETRIES = 8
# Wall-clock budget in seconds for one symbolic comparison (parsing + verification).
SYMBOLIC_BUDGET_S = 5.0

BENCHMARK_ALIASES = {
    "gsm8k": "gsm8k",
    "math": "math",
    "cmath": "cmath",
    "gaokao_mathqa": "gaokao_mathqa",
    "gaokao-mathqa": "gaokao_mathqa",
    "mathqa": "gaokao_mathqa",
    "gaokao_mathcloze": "gaokao_mathcloze",
    "gaokao-mathcloze": "gaokao_mathcloze",
    "mathcloze": "gaokao_mathcloze",
}
NUMERIC_BENCHMARKS = frozenset({"gsm8k", "cmath"})
CHOICE_BENCHMARKS = frozenset({"gaokao_mathqa"})

_stats_lock = threading.Lock()
_stats: Counter = Counter()


def _count(name: str) -> None:
    with _stats_lock:
        _stats[name] += 1


def check_stats() -> dict[str, int]:
    """Counts of notable events since start: symbolic checks that timed out, were refused or failed."""
    with _stats_lock:
        return dict(_stats)


def canonical_benchmark(benchmark: str) -> str:
    """The canonical benchmark name (``gsm8k``, ``math``, ``cmath``, ``gaokao_mathqa``, ``gaokao_mathcloze``).

    Unknown names are treated as free-form math answers (``math``).
    """
    return BENCHMARK_ALIASES.get(benchmark.strip().lower(), "math")


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def _matching_brace(text: str, open_index: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_index`` (escaped braces ``\\{``, ``\\}`` skipped)."""
    depth = 0
    i = open_index
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` or ``\\fbox{...}`` in ``text`` (braces matched).

    Also accepts the brace-less form ``\\boxed 5`` (content up to the next space or ``$``).
    Returns None when there is no complete box (an unclosed brace is not a box).
    """
    if not text:
        return None
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    tries = 0
    while start >= 0 and tries < MAX_BOX_RETRIES:
        tries += 1
        cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
        rest = start + len(cmd)
        j = rest
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            end = _matching_brace(text, j)
            if end is not None:
                return text[j + 1:end].strip()
        elif j > rest and j < len(text):
            m = re.match(r"[^\s$]+", text[j:])
            if m:
                return m.group(0).rstrip(".")
        # A malformed box: fall back to the previous one.
        start = max(text.rfind(c, 0, start) for c in _BOX_COMMANDS)
    return None


_NUMBER_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_FINAL_ANSWER_RE = re.compile(
    r"final answer is[:\s]*(.+?)(?:\.?\s*I hope it is correct|\n|$)", re.IGNORECASE | re.DOTALL
)
_ANSWER_IS_RE = re.compile(r"(?:the answer is|answer:|答案是|答案为)[:：\s]*(.+?)(?:\n|$)", re.IGNORECASE)
_HASHES_RE = re.compile(r"####\s*(.+?)(?:\n|$)")
_CHOICE_RE = re.compile(r"\(?\b([A-E])\b\)?")


def last_number(text: str) -> str | None:
    """The last number in ``text`` (integers, decimals, ``a/b``, ``1,234``), commas removed."""
    matches = _NUMBER_RE.findall(text or "")
    if not matches:
        return None
    return matches[-1].replace(",", "")


def _marked_answer(completion: str) -> str | None:
    """The answer marked by a box or by one of the answer phrases, last occurrence first."""
    boxed = extract_boxed(completion)
    if boxed is not None:
        return boxed
    for pattern in (_FINAL_ANSWER_RE, _ANSWER_IS_RE, _HASHES_RE):
        found = pattern.findall(completion)
        if found:
            answer = found[-1].strip()
            answer = re.sub(r"[.。]\s*$", "", answer).strip()
            if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
                answer = answer.strip("$").strip()
            if answer:
                return answer
    return None


def _choice_letters(text: str) -> str | None:
    """Option letters ``A``-``E`` named in ``text``, sorted and joined (``"B"``, ``"AC"``)."""
    cleaned = re.sub(r"\\text\{([^{}]*)\}|\\mathrm\{([^{}]*)\}", lambda m: m.group(1) or m.group(2) or "", text)
    cleaned = cleaned.replace("$", " ")
    if re.fullmatch(r"[\s(),、和与and]*([A-E][\s(),、和与and]*)+", cleaned):
        letters = re.findall(r"[A-E]", cleaned)
    else:
        letters = _CHOICE_RE.findall(cleaned)[-1:]
    return "".join(sorted(set(letters))) or None


def extract_answer(completion: str, benchmark: str = "math") -> str | None:
    """The final answer of a model completion for ``benchmark``, or None when it gives none.

    Order: last box; "final answer is"; "The answer is"/"答案是"; "####"; then, for the numeric
    benchmarks (GSM8K, CMATH) only, the last number of the completion. For GSM8K/CMATH the
    number inside a marked answer is returned (``"$18."`` -> ``"18"``); for Gaokao MathQA the
    option letters (``"AC"``).
    """
    if not completion:
        return None
    bench = canonical_benchmark(benchmark)
    marked = _marked_answer(completion)
    if bench in CHOICE_BENCHMARKS:
        return _choice_letters(marked) if marked is not None else _choice_letters(completion[-200:])
    if bench in NUMERIC_BENCHMARKS:
        source = marked if marked is not None else completion
        number = last_number(_strip_text_wrappers(source).replace("\\%", "%"))
        if number is not None:
            return number
        return marked
    return marked


def gold_answer(item: dict, benchmark: str) -> str | None:
    """The gold final answer of one benchmark row, or None when the row has none.

    gsm8k: the text after ``####`` (commas removed); math: the last box of ``solution``; cmath:
    ``golden``; gaokao_mathqa: the option letters of ``label``; gaokao_mathcloze: ``answer``
    (several blanks separated by ``;``). Rows already converted to ``{"answer": ...}`` are
    accepted for every benchmark.
    """
    bench = canonical_benchmark(benchmark)
    if bench == "gsm8k":
        raw = item.get("answer")
        if raw is None:
            return None
        raw = str(raw)
        if "####" in raw:
            return raw.split("####")[-1].strip().replace(",", "") or None
        return raw.strip().replace(",", "") or None
    if bench == "math":
        if item.get("solution"):
            return extract_boxed(str(item["solution"]))
        return _str_or_none(item.get("answer"))
    if bench == "cmath":
        return _str_or_none(item.get("golden", item.get("answer")))
    if bench == "gaokao_mathqa":
        label = item.get("label") or item.get("answer")
        return _choice_letters(str(label)) if label else None
    if bench == "gaokao_mathcloze":
        return _str_or_none(item.get("answer"))
    return _str_or_none(item.get("answer"))


def _str_or_none(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_UNIT_WORDS = (
    "units?|sq\\.?|square|cubic|degrees?|cm|centimeters?|mm|millimeters?|m|meters?|km|kilometers?|"
    "inch(?:es)?|in|feet|foot|ft|yards?|yd|miles?|mi|mph|hours?|hrs?|minutes?|mins?|seconds?|secs?|"
    "days?|weeks?|months?|years?|dollars?|cents?|pounds?|lbs?|ounces?|oz|grams?|g|kg|kilograms?|"
    "liters?|litres?|l|ml|gallons?|students?|people|persons?|points?|ways?|books?|pages?|"
    "apples?|marbles?|coins?|cookies?|eggs?|trees?|boxes?|bags?|times|percent|元|个|人|只|本|米|厘米|"
    "千米|克|千克|天|小时|分钟|秒|岁|张|块|次|条|辆|棵|页|平方米|平方厘米|立方米|立方厘米|升|毫升|吨|包|支|朵|件"
)
_TRAILING_UNITS_RE = re.compile(rf"^(.*?[\d}}])\s*(?:(?:{_UNIT_WORDS})(?:\^?\{{?[23]\}}?)?\s*)+\.?$", re.IGNORECASE)
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")


def _strip_text_wrappers(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = _TEXT_WRAPPER_RE.sub(r"\1", text)
    return text


def _fix_fracs(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{b}`` -> ``\\frac{1}{b}``, ``\\sqrt2`` -> ``\\sqrt{2}``."""
    text = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", text)
    text = re.sub(r"\\frac\s*\{([^{}]*)\}\s*(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\sqrt\s*(\d+|[a-zA-Z])", r"\\sqrt{\1}", text)
    return text


def normalize_answer(answer: str) -> str:
    """A canonical string for an answer (Minerva-style): formatting and units removed, spaces dropped.

    Guarantees: idempotent; ``normalize_answer("\\\\dfrac{1}{2}\\\\text{ cm}") == "\\\\frac{1}{2}"``.
    Strings longer than ``MAX_COMPARE_CHARS`` only lose their whitespace (bounded cost).
    """
    text = answer.strip()
    if len(text) > MAX_COMPARE_CHARS:
        return re.sub(r"\s+", "", text)
    text = text.replace("\n", " ")
    text = re.sub(r"^\$+|\$+$", "", text).strip()
    text = re.sub(r"\\\(|\\\)|\\\[|\\\]", "", text)
    text = re.sub(r"\\(?:boxed|fbox)\s*\{(.*)\}", r"\1", text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\\left\s*|\\right\s*|\\big\s*|\\Big\s*|\\bigl|\\bigr", "", text)
    text = re.sub(r"\\[!,;:> ]|~", " ", text)
    text = text.replace("{,}", ",")
    text = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree", "", text)
    text = re.sub(r"\\?%|\\percent", "", text)
    text = text.replace("\\$", "").replace("$", "")
    text = _strip_text_wrappers(text)
    text = re.sub(r"\\displaystyle|\\mathstrut", "", text)
    text = text.replace("，", ",").replace("：", ":").replace("（", "(").replace("）", ")")
    text = text.strip()
    unit_match = _TRAILING_UNITS_RE.match(text)
    if unit_match and re.search(r"\d", unit_match.group(1)):
        text = unit_match.group(1)
    # A single variable on the left of "=" is not part of the answer ("x = 5" -> "5").
    text = re.sub(r"^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)\s*=\s*(?=[^=]+$)", "", text)
    text = re.sub(r"^(?:is|are|be|=)\s+", "", text)
    text = _fix_fracs(text)
    text = text.rstrip(".。 ")
    text = re.sub(r"\s+", "", text)
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    return text


def _as_number(text: str) -> Fraction | float | None:
    """A normalised answer as an exact number when it is one (``3``, ``-2.5``, ``3/4``, ``\\frac{3}{4}``)."""
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}", text)
    if m:
        try:
            value = Fraction(m.group(2)) / Fraction(m.group(3))
        except ZeroDivisionError:
            return None
        return -value if m.group(1) else value
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)/(-?\d+(?:\.\d+)?)", text)
    if m:
        try:
            return Fraction(m.group(1)) / Fraction(m.group(2))
        except ZeroDivisionError:
            return None
    if re.fullmatch(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?", text):
        try:
            return Fraction(text)
        except (ValueError, OverflowError):
            return None
    return None


def _decimal_places(text: str) -> int:
    m = re.fullmatch(r"[-+]?\d*\.(\d+)", text)
    return len(m.group(1)) if m else 0


def _numbers_equal(a: Fraction, b: Fraction, a_text: str = "", b_text: str = "") -> bool:
    """Exact equality; a decimal written with >= 4 places also matches a value that rounds to it.

    ``0.3333`` equals ``1/3`` (rounded to four places), ``0.33`` does not, and integers are
    compared exactly (``1450001`` is not ``1450000``).
    """
    if a == b:
        return True
    for value, text, other in ((a, a_text, b), (b, b_text, a)):
        places = _decimal_places(text)
        if places >= 4 and abs(other - value) <= Fraction(1, 2 * 10**places):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Symbolic comparison (Math-Verify), bounded
# --------------------------------------------------------------------------------------------

_DANGEROUS_RE = re.compile(
    r"\^\s*\{?\s*-?\d{4,}"          # exponents with 4+ digits
    r"|\^\s*\{[^{}]*\^"             # power towers a^{b^c}
    r"|\^\s*\d\s*\^"                 # a^b^c
    r"|\d{3,}\s*!"                   # big factorials
    r"|\d{40,}"                      # very long literals
)


def _symbolic_allowed(text: str) -> bool:
    return len(text) <= MAX_ANSWER_CHARS and not _DANGEROUS_RE.search(text)


@functools.lru_cache(maxsize=65536)
def _parse_latex(text: str) -> tuple:
    """Math-Verify's parse of one answer, with its signal-based timeout switched off (cached)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    configs = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    return tuple(parse(f"${text}$", extraction_config=configs, parsing_timeout=None))


def _symbolic_equal_unbounded(gold: str, pred: str) -> bool:
    from math_verify import verify

    gold_parsed = _parse_latex(gold)
    pred_parsed = _parse_latex(pred)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=None))


def _run_with_budget(fn, args: tuple, budget_s: float | None):
    """``fn(*args)`` in a daemon thread, waited on for ``budget_s`` seconds; None when over budget.

    Works in any thread and any process (no signals). An over-budget call keeps running in its
    daemon thread, but the caller is not blocked and the process can still exit.
    """
    if budget_s is None:
        return fn(*args)
    box: dict = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - any parser failure is counted and answered False
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="answer-check", daemon=True).start()
    if not done.wait(budget_s):
        _count("symbolic_timeout")
        return None
    if "error" in box:
        _count("symbolic_error")
        return None
    return box["value"]


def symbolic_equal(gold: str, pred: str, budget_s: float | None = SYMBOLIC_BUDGET_S) -> bool:
    """Math-Verify equivalence of two LaTeX answers within a wall-clock budget; False when unsure."""
    if not (_symbolic_allowed(gold) and _symbolic_allowed(pred)):
        _count("symbolic_refused")
        return False
    return bool(_run_with_budget(_symbolic_equal_unbounded, (gold, pred), budget_s))


# --------------------------------------------------------------------------------------------
# Equivalence and reward
# --------------------------------------------------------------------------------------------


def _single_answers_equal(pred: str, gold: str) -> bool:
    norm_pred = normalize_answer(pred)
    norm_gold = normalize_answer(gold)
    if not norm_pred or not norm_gold:
        return False
    if norm_pred == norm_gold:
        return True
    num_pred = _as_number(norm_pred)
    num_gold = _as_number(norm_gold)
    if num_pred is not None and num_gold is not None:
        return _numbers_equal(num_pred, num_gold, norm_pred, norm_gold)
    if _is_choice(norm_gold) or _is_choice(norm_pred):
        return _choice_letters(pred) == _choice_letters(gold)
    if norm_pred.lower() == norm_gold.lower() and not re.search(r"[a-zA-Z]", norm_gold):
        return True
    return symbolic_equal(_symbolic_form(gold), _symbolic_form(pred))


def _is_choice(norm: str) -> bool:
    return bool(re.fullmatch(r"\(?[A-E]\)?(?:[,、]?\(?[A-E]\)?)*", norm))


def _symbolic_form(answer: str) -> str:
    """The answer as handed to Math-Verify: normalised spacing kept, wrappers and units removed."""
    text = answer.strip().strip("$").strip()
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = _strip_text_wrappers(text)
    text = re.sub(r"\\?%", "", text)
    unit_match = _TRAILING_UNITS_RE.match(text)
    if unit_match and re.search(r"\d", unit_match.group(1)):
        text = unit_match.group(1)
    text = re.sub(r"(?<=\d),\\!(?=\d{3})|(?<=\d)\{,\}(?=\d{3})", "", text)
    return text.rstrip(". ")


def _split_blanks(answer: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;；]", answer) if part.strip()]


def answers_equal(pred: str | None, gold: str | None) -> bool:
    """True when the predicted final answer is equivalent to the gold one.

    None or empty on either side is False. Cheap checks first (normalised strings, numbers),
    then Math-Verify within ``SYMBOLIC_BUDGET_S``. Answers with several blanks separated by
    ``;`` (Gaokao cloze) must match blank by blank, in order. Thread- and process-safe.
    """
    if pred is None or gold is None:
        return False
    pred, gold = str(pred), str(gold)
    if not pred.strip() or not gold.strip():
        return False
    if len(pred) > MAX_COMPARE_CHARS or len(gold) > MAX_COMPARE_CHARS:
        _count("too_long")
        return pred.strip() == gold.strip()
    gold_parts = _split_blanks(gold)
    pred_parts = _split_blanks(pred)
    if len(gold_parts) > 1 or len(pred_parts) > 1:
        return len(gold_parts) == len(pred_parts) and all(
            _single_answers_equal(p, g) for p, g in zip(pred_parts, gold_parts)
        )
    return _single_answers_equal(pred, gold)


def math_reward(completion: str, gold: str, benchmark: str = "math") -> float:
    """1.0 when the completion's extracted final answer equals ``gold``, else 0.0 (never raises on text)."""
    return 1.0 if answers_equal(extract_answer(completion, benchmark), gold) else 0.0


def is_finite_number(text: str) -> bool:
    """Whether a normalised answer is a plain finite number (used by the numeric benchmarks)."""
    value = _as_number(normalize_answer(text))
    return value is not None and math.isfinite(float(value))
