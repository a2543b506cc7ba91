"""Benchmark decontamination (DeepSeekMath, section 2.1, step 6).

Method: every page that contains any 10-gram of a benchmark text (GSM8K and MATH test
questions and solutions, CMATH test questions, AGIEval Gaokao math questions) is removed;
benchmark texts of 3 to 9 tokens are matched as exact whole token sequences. Both sides go
through one normalisation (``normalize``), n-grams are hashed to 64 bits (``ngrams``), the
index is built once on the driver (``index``) and loaded once per worker process
(``transforms``); ``pipeline.run`` is the job, ``python -m pipeline.decontaminate`` its CLI.

Departures from the paper (each configurable back to the paper's plain rule where noted):
- tokens are our own normalised tokens (the paper does not define its tokeniser): words,
  numbers, TeX command names, one token per CJK character; operators, punctuation, TeX spacing
  and delimiters are dropped, so re-typeset or re-flowed leaks still match;
- n-gram windows with fewer than two word-like tokens (words of 2+ letters, CJK characters;
  not numbers, single-letter variables or TeX commands) are not indexed: lists such as
  ``1 2 3 ... 9 and`` or formulas such as the quadratic formula occur on countless clean pages;
  a long text left without an indexed window is matched as a whole instead, so every text with
  a word in it stays detectable (``--plain_rule`` restores the paper's rule);
- GSM8K calculator annotations and MATH Asymptote code are removed before matching;
- Gaokao multiple-choice stems are indexed together with their options (a stem alone such as
  ``若a>b，则`` would be a 5-token "short text" matching countless pages); one-token answers
  (numbers, option letters) are not indexed;
- identical normalised texts are indexed once; optional ``--max_items_per_ngram`` drops
  n-grams shared by many items (off by default).
"""
