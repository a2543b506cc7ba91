"""Benchmark decontamination (DeepSeekMath, section 2.1, step 6).

Method: every page that contains any 10-gram of a benchmark text (GSM8K and MATH test
questions and solutions, CMATH test questions, AGIEval Gaokao math questions) is removed;
benchmark texts of 3 to 9 tokens are matched as exact whole token sequences. Both sides go
through one normalisation (``normalize``), n-grams are hashed to 64 bits (``ngrams``), the
index is built once on the driver (``index``) and loaded once per worker process
(``transforms``); ``pipeline.run`` is the job, ``python -m pipeline.decontaminate`` its CLI.

Departures from the paper (each configurable back to the paper's plain rule where noted):
- tokens are our own normalised tokens (the paper does not define its tokeniser): words,
  numbers, one token per CJK character, and inside math one token per run of symbols between
  operators (``ax^2+bx+c=0`` -> ``ax2 bx c 0``), so a 10-gram of math carries about as much
  as a 10-gram of prose and does not depend on TeX spacing;
- windows made only of numbers and single-letter variables (no word-like token) are not
  indexed (``--min_wordlike_tokens 0`` indexes them): lists such as ``1 2 3 ... 10`` occur
  on countless clean pages;
- GSM8K calculator annotations and MATH Asymptote code are removed before matching;
- Gaokao multiple-choice stems are indexed together with their options (a stem alone such as
  ``若a>b，则`` would be a 5-token "short text" matching countless pages); one-token answers
  (numbers, option letters) are not indexed;
- optional ``--max_items_per_ngram`` drops n-grams shared by many items (off by default).
"""
