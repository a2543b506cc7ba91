"""Train one fastText supervised model in a fresh process: ``python fasttext_worker.py '<json>'``.

Why a separate process: the fastText build we depend on (``fasttext-numpy2`` 0.10.4) leaves
part of its freshly allocated training matrices uninitialised, so whatever a long-lived
process left in freed heap memory leaks into the model. After a Python process has handled
real data this often surfaces as ``RuntimeError: Encountered NaN`` (and, worse, could silently
skew a model when the leftover bytes happen to be finite floats). A new interpreter that
imports nothing but fastText starts from a clean heap. This file deliberately imports nothing
from the project, so that running it does not load Beam or pyarrow first.

The JSON argument holds ``input`` (training file), ``output`` (model path), the keyword
arguments of ``fasttext.train_supervised``, optionally ``validation`` (a file of normalised
texts, one per line), and ``report``: where to write ``{"scores": P(math) of each validation
line, "vocabulary_size": ...}``, so the caller never has to load the (large) model itself. Exit status 0 on success; on failure
the error is printed to stderr and the status is 3 for fastText's NaN error, 1 otherwise.

``math_probability`` (the probability of math from fastText's labels and probabilities) lives
here so that this process and ``MathClassifier`` share it.
"""
import json
import sys

MATH_LABEL = "__label__math"
OTHER_LABEL = "__label__other"
BATCH = 10_000


def math_probability(line: str, labels, probs) -> float:
    """P(math) of one prediction, clipped to [0, 1] (fastText reports exp(log(p + 1e-5)), which can
    exceed 1); 0.0 for an empty line, which fastText cannot predict from."""
    if not line:
        return 0.0
    for label, prob in zip(labels, probs):
        if label == MATH_LABEL:
            return min(1.0, max(0.0, float(prob)))
    return 0.0


def predict_math(model, lines: list) -> list:
    """P(math) for normalised lines, through fastText's multi-line predict."""
    if not lines:
        return []
    all_labels, all_probs = model.predict(lines, k=len(model.get_labels()))
    return [math_probability(line, labels, probs) for line, labels, probs in zip(lines, all_labels, all_probs)]


def main() -> int:
    spec = json.loads(sys.argv[1])
    import fasttext

    try:
        model = fasttext.train_supervised(input=spec["input"], **spec["kwargs"])
    except RuntimeError as exc:
        print(f"fastText training failed: {exc}", file=sys.stderr)
        return 3 if "NaN" in str(exc) else 1
    model.save_model(spec["output"])
    scores = []
    if spec.get("validation"):
        with open(spec["validation"], encoding="utf-8") as fh:
            batch = []
            for line in fh:
                batch.append(line.rstrip("\n"))
                if len(batch) == BATCH:
                    scores += predict_math(model, batch)
                    batch = []
            scores += predict_math(model, batch)
    with open(spec["report"], "w", encoding="utf-8") as fh:
        json.dump({"scores": scores, "vocabulary_size": len(model.words)}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
