"""Train one fastText supervised model in a fresh process: ``python fasttext_worker.py '<json>'``.

Why a separate process: the fastText build we depend on (``fasttext-numpy2`` 0.10.4) leaves
part of its freshly allocated training matrices uninitialised, so whatever a long-lived
process left in freed heap memory leaks into the model. After a Python process has handled
real data this often surfaces as ``RuntimeError: Encountered NaN`` (and, worse, could silently
skew a model when the leftover bytes happen to be finite floats). A new interpreter that
imports nothing but fastText starts from a clean heap. This file deliberately imports nothing
from the project, so that running it does not load Beam or pyarrow first.

The JSON argument holds ``input`` (training file), ``output`` (model path) and the keyword
arguments of ``fasttext.train_supervised``. Exit status 0 on success; on failure the error is
printed to stderr and the status is 3 for fastText's NaN error, 1 otherwise.
"""
import json
import sys


def main() -> int:
    spec = json.loads(sys.argv[1])
    import fasttext

    try:
        model = fasttext.train_supervised(input=spec["input"], **spec["kwargs"])
    except RuntimeError as exc:
        print(f"fastText training failed: {exc}", file=sys.stderr)
        return 3 if "NaN" in str(exc) else 1
    model.save_model(spec["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
