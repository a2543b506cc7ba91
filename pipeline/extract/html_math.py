"""HTML -> main text with the math kept as TeX.

PROVISIONAL: this is the interface the extract pipeline calls; its body is plain trafilatura
for now and is being replaced by the math-preserving extractor.
"""
from __future__ import annotations

from dataclasses import dataclass

import trafilatura


@dataclass(frozen=True)
class Extracted:
    """The result of extracting one page."""

    text: str  # main text, formulas as $...$ (inline) / $$...$$ (display) at their place
    title: str | None
    num_formulas: int


def extract_main_text(html: str, url: str | None = None) -> Extracted:
    """Extract the main text of ``html`` keeping its math as TeX. Never raises on bad HTML:
    returns an ``Extracted`` with empty text instead (callers count empty pages)."""
    text = trafilatura.extract(html, url=url, include_comments=False) or ""
    return Extracted(text=text, title=None, num_formulas=0)
