"""Train the fastText math classifier: ``python -m classifiers.train --positives P --negatives N --output model.bin``.

Method (DeepSeekMath, section 2.1): a fastText supervised classifier, positives from a seed
math corpus (OpenWebMath in the paper) and negatives sampled from Common Crawl, 500K of each,
with vector dimension 256, learning rate 0.1, word n-grams up to 3, minimum word count 3 and
3 epochs. Those are the defaults here.

What this adds or departs from:
- Texts go through ``classifiers.normalize`` (the paper does not describe its preprocessing).
- A validation split (default 10%, drawn at random with ``--seed``) is held out from training
  and reported: precision, recall and F1 at a score of 0.5, and ROC-AUC.
- Sampling: ``--max-positives``/``--max-negatives`` rows are drawn uniformly from the given
  sources in two passes (``classifiers.text_sources.sample_texts``), holding only row numbers in
  memory; the training file is shuffled on disk through 64 bucket files, so no more than
  1/64 of the training text is ever in memory.
- The fastText hash ``bucket`` count is not in the paper. By default (``--bucket 0``) it is sized
  to the training data (``auto_bucket``: one bucket per 32 training tokens, a power of two between
  32,768 and fastText's default 2,000,000): a model of ~40 MB on the bundled sample, ~2 GB at the
  paper's scale. A fixed ``--bucket N`` is used as given.
- ``--thread`` defaults to 1: fastText's training threads race, so only one thread gives the same
  model in every run; ``--thread 0`` uses all cores. The training file's order and the validation
  split depend only on the texts (``content_hash``), not on the order the sources were written in,
  so the same data gives the same model on every runner.

Outputs: the model at ``--output`` (local path or ``gs://``/``s3://``) and ``<output>.json``
with the configuration, the data counts and the validation metrics.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import yaml
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from classifiers.fasttext_worker import MATH_LABEL, OTHER_LABEL
from classifiers.metrics import binary_metrics
from classifiers.normalize import DEFAULT_MAX_TOKENS, normalize_text
from classifiers.text_sources import ReadStats, SourceError, expand_sources, sample_texts
from pipeline.beam_utils import write_json
from pipeline.inputs import InputError, beam_args_only

SHUFFLE_BUCKETS = 64
MIN_AUTO_BUCKET = 1 << 15
MAX_AUTO_BUCKET = 2_000_000  # fastText's default
TOKENS_PER_BUCKET = 32


def auto_bucket(train_tokens: int) -> int:
    """fastText hash buckets for a training set of ``train_tokens`` tokens: the power of two at or
    above ``train_tokens / 32``, within [32,768, 2,000,000].

    >>> auto_bucket(0), auto_bucket(1_000_000), auto_bucket(10**10)
    (32768, 32768, 2000000)
    >>> auto_bucket(5_000_000)
    262144
    """
    want = max(1, train_tokens // TOKENS_PER_BUCKET)
    return min(MAX_AUTO_BUCKET, max(MIN_AUTO_BUCKET, 1 << (want - 1).bit_length()))


@dataclass
class FastTextConfig:
    """fastText supervised-training settings; defaults are the paper's (section 2.1)."""

    dim: int = 256
    lr: float = 0.1
    word_ngrams: int = 3
    min_count: int = 3
    epoch: int = 3
    loss: str = "softmax"
    bucket: int = 0  # not in the paper; 0: sized to the training data (auto_bucket), N: fixed
    thread: int = 1  # 1: reproducible (fastText's threads race); 0: all cores, faster, not reproducible
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dim < 1 or self.epoch < 1 or self.word_ngrams < 1 or self.min_count < 1 or self.bucket < 0:
            raise ValueError(f"dim, epoch, word_ngrams and min_count must be >= 1, bucket >= 0: {self}")
        if not 0 < self.lr <= 10:
            raise ValueError(f"lr must be in (0, 10]: {self.lr}")
        if self.loss not in ("softmax", "ova", "hs", "ns"):
            raise ValueError(f"unknown fastText loss {self.loss!r}")
        if self.thread < 0:
            raise ValueError(f"thread must be >= 0: {self.thread}")

    def fasttext_kwargs(self) -> dict:
        """Keyword arguments for ``fasttext.train_supervised``."""
        return {
            "dim": self.dim,
            "lr": self.lr,
            "wordNgrams": self.word_ngrams,
            "minCount": self.min_count,
            "epoch": self.epoch,
            "loss": self.loss,
            "bucket": self.bucket,
            "thread": self.thread or (os.cpu_count() or 1),
            "seed": self.seed,
            "verbose": 0,
        }


@dataclass
class TrainConfig:
    """What to train on and how; every field is a ``--flag`` of the CLI and a key of ``--config`` YAML."""

    positives: list[str] = field(default_factory=list)  # files, globs or folders with a `text` column
    negatives: list[str] = field(default_factory=list)
    output: str = ""
    max_positives: int | None = 500_000  # paper: 500K of each
    max_negatives: int | None = 500_000
    validation_fraction: float = 0.1
    max_tokens: int = DEFAULT_MAX_TOKENS
    seed: int = 0
    balance_max_repeat: int = 1  # > 1: the smaller class's lines are repeated up to this many times (1:1)
    fasttext: FastTextConfig = field(default_factory=FastTextConfig)

    def __post_init__(self) -> None:
        if isinstance(self.fasttext, dict):
            self.fasttext = FastTextConfig(**self.fasttext)
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1): {self.validation_fraction}")


class TrainingDataError(ValueError):
    """The training data cannot make a classifier (a class is empty after normalisation)."""


def content_hash(seed: int, text: str, purpose: str = "order") -> int:
    """A 64-bit hash of ``text`` under ``seed`` (a pseudo-random number that depends on the text only)."""
    digest = hashlib.blake2b(f"{purpose}:{seed}:".encode() + text.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


_ORDER_KEY_DIGITS = 20  # a 64-bit hash in decimal, zero-padded: string order = hash order


def _write_shuffled(examples: Iterable[str | tuple[str, str]], path: str, work_dir: str, seed: int) -> int:
    """Write lines to ``path`` in a pseudo-random order that depends only on the lines (not on the
    order they arrive in), holding ~1/SHUFFLE_BUCKETS of them in memory.

    Each line goes to the bucket file its content hash names; each bucket is then sorted by the
    hash and appended. The same multiset of lines therefore gives the same file, whichever order a
    runner wrote the source shards in. An example may be ``(line, salt)``: the salt joins the
    hash, so the repeats of one line (class balancing) land at different places of the file.
    """
    bucket_paths = [os.path.join(work_dir, f"shuffle-{i:03d}.txt") for i in range(SHUFFLE_BUCKETS)]
    buckets = [open(p, "w", encoding="utf-8") for p in bucket_paths]  # noqa: SIM115 - closed in finally
    count = 0
    try:
        for example in examples:
            line, salt = (example, "") if isinstance(example, str) else example
            h = content_hash(seed, line + salt)
            buckets[h % SHUFFLE_BUCKETS].write(f"{h:0{_ORDER_KEY_DIGITS}d} {line}\n")
            count += 1
    finally:
        for fh in buckets:
            fh.close()
    with open(path, "w", encoding="utf-8") as out:
        for bucket_path in bucket_paths:
            with open(bucket_path, encoding="utf-8") as fh:
                lines = fh.readlines()
            lines.sort()
            out.writelines(line[_ORDER_KEY_DIGITS + 1:] for line in lines)
            os.remove(bucket_path)
    return count


def balance_repeats(majority: int, minority: int, max_repeat: int) -> int:
    """How many times each training line of the smaller class is written so that the classes
    come near the paper's 1:1 ratio (500K + 500K): ``round(majority / minority)``, at least 1
    and at most ``max_repeat`` (1: no balancing).

    >>> balance_repeats(6000, 190, 32), balance_repeats(6000, 100, 32), balance_repeats(500, 500, 32), balance_repeats(10, 0, 32)
    (32, 32, 1, 1)
    >>> balance_repeats(600, 190, 32), balance_repeats(600, 190, 1)
    (3, 1)
    """
    if minority <= 0 or majority <= minority or max_repeat <= 1:
        return 1
    return min(max_repeat, round(majority / minority))


def train_from_texts(
    positives: Iterable[str | tuple[str, int]],
    negatives: Iterable[str | tuple[str, int]],
    output: str,
    fasttext_config: FastTextConfig | None = None,
    validation_fraction: float = 0.1,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    seed: int = 0,
    extra_report: dict | None = None,
    epoch_schedule: Callable[[int], int] | None = None,
    balance_max_repeat: int = 1,
) -> dict:
    """Train a math classifier on two streams of texts, save it to ``output`` and return its report.

    The report holds the configuration, the number of
    training and validation examples per class, texts dropped because they have no token, the
    training time and the validation metrics (``None`` when the validation split is empty).
    ``epoch_schedule`` (training examples -> epochs) overrides the configured epochs once the
    training set's size is known. The report also holds ``validation_positive_histogram``: the
    held-out positives' scores as ``pipeline.rounds.calibration`` logit-bin counts.
    ``balance_max_repeat`` > 1: each training line of the smaller class is written
    ``balance_repeats(...)`` times (at different places of the shuffled file), so a pool of a few
    hundred negatives against thousands of seed positives trains near the paper's 1:1 ratio;
    counted in ``counts["balance_repeats"]``. A text may come as ``(text, weight)``: its training
    line is written ``weight`` times (the pool's own math weighed above the seed; the balance then
    counts the lines written). Validation lines are never repeated.
    Raises ``TrainingDataError`` when either class has no training example.
    """
    cfg = fasttext_config or FastTextConfig()
    counts = {"train_positives": 0, "train_negatives": 0, "validation_positives": 0, "validation_negatives": 0,
              "empty_after_normalization": 0, "train_tokens": 0, "train_positives_written": 0,
              "train_negatives_written": 0}
    work_dir = tempfile.mkdtemp(prefix="math-classifier-train-")
    try:
        train_path = os.path.join(work_dir, "train.txt")
        validation_path = os.path.join(work_dir, "validation.txt")
        validation_labels: list[int] = []

        def labelled(validation_file) -> Iterable[str]:
            for label, texts in ((1, positives), (0, negatives)):
                kind = "positives" if label else "negatives"
                for item in texts:
                    text, weight = (item, 1) if isinstance(item, str) else item
                    line = normalize_text(text, max_tokens)
                    if not line:
                        counts["empty_after_normalization"] += 1
                        continue
                    if content_hash(seed, line, "validation") < validation_fraction * 2**64:
                        validation_file.write(line + "\n")
                        validation_labels.append(label)
                        counts[f"validation_{kind}"] += 1
                        continue
                    counts[f"train_{kind}"] += 1
                    counts[f"train_{kind}_written"] += max(1, weight)
                    counts["train_tokens"] += line.count(" ") + 1
                    labelled_line = f"{MATH_LABEL if label else OTHER_LABEL} {line}"
                    yield labelled_line
                    for k in range(1, weight):
                        yield labelled_line, f"#weight{k}"

        with open(validation_path, "w", encoding="utf-8") as validation_file:
            _write_shuffled(labelled(validation_file), train_path, work_dir, seed)
        if counts["train_positives"] == 0 or counts["train_negatives"] == 0:
            raise TrainingDataError(f"a class has no training example: {counts}")
        counts["balance_repeats"] = _balance(train_path, work_dir, seed, counts, balance_max_repeat)

        if cfg.bucket == 0:
            cfg = dataclasses.replace(cfg, bucket=auto_bucket(counts["train_tokens"]))
        if epoch_schedule is not None:
            cfg = dataclasses.replace(cfg, epoch=int(epoch_schedule(counts["train_positives"] + counts["train_negatives"])))
        local_model = output if "://" not in output else os.path.join(work_dir, "model.bin")
        if local_model == output:
            os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        started = time.perf_counter()
        attempts, trained = train_fasttext(train_path, local_model, cfg,
                                           validation_path if validation_labels else None)
        train_seconds = time.perf_counter() - started
        if local_model != output:
            _copy_out(local_model, output)
        metrics = binary_metrics(validation_labels, trained["scores"]).to_dict() if validation_labels else None
        from pipeline.rounds.calibration import histogram as score_histogram  # noqa: PLC0415 - import cycle

        positive_histogram = score_histogram(s for s, y in zip(trained["scores"], validation_labels) if y == 1)
        return {
            "model": output,
            "fasttext": dataclasses.asdict(cfg),
            "validation_fraction": validation_fraction,
            "max_tokens": max_tokens,
            "seed": seed,
            "counts": counts,
            "vocabulary_size": trained["vocabulary_size"],
            "train_seconds": round(train_seconds, 3),
            "train_attempts": attempts,
            "validation": metrics,
            "validation_positive_histogram": positive_histogram,
            **(extra_report or {}),
        }
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _balance(train_path: str, work_dir: str, seed: int, counts: dict, max_repeat: int) -> int:
    """Rewrite the shuffled training file with the smaller class's lines repeated (see
    ``balance_repeats``, on the lines written, weights included); returns the repeat factor (1:
    the file is left as it is)."""
    pos, neg = counts["train_positives_written"], counts["train_negatives_written"]
    repeats = balance_repeats(max(pos, neg), min(pos, neg), max_repeat)
    if repeats == 1:
        return 1
    minority = OTHER_LABEL if neg < pos else MATH_LABEL

    def repeated():
        # The salt is the line's place in the file, so weighted copies of one text stay apart.
        with open(train_path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                line = line.rstrip("\n")
                yield line, f"#{i}"
                if line.startswith(minority + " "):
                    for k in range(1, repeats):
                        yield line, f"#{i}.{k}"

    balanced = os.path.join(work_dir, "train-balanced.txt")
    _write_shuffled(repeated(), balanced, work_dir, seed)
    os.replace(balanced, train_path)
    key = "train_negatives" if minority == OTHER_LABEL else "train_positives"
    counts[key + "_written"] *= repeats
    return repeats


def train_fasttext(train_path: str, model_path: str, config: FastTextConfig, validation_path: str | None = None,
                   max_attempts: int = 3) -> tuple[int, dict]:
    """Train a fastText supervised model on ``train_path`` and save it to ``model_path``; returns
    the number of attempts it took and ``{"scores": P(math) of each validation line,
    "vocabulary_size": words}`` (scored in the training process, so the large model is not loaded twice).

    Training runs in a fresh interpreter (``classifiers/fasttext_worker.py`` explains why). When
    fastText still reports "Encountered NaN", it is retried with the next seed, up to
    ``max_attempts`` times; any other failure raises ``RuntimeError`` with fastText's message.
    """
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fasttext_worker.py")
    kwargs = config.fasttext_kwargs()
    report = model_path + ".worker.json"
    for attempt in range(1, max_attempts + 1):
        spec = {"input": train_path, "output": model_path, "kwargs": {**kwargs, "seed": config.seed + attempt - 1},
                "validation": validation_path, "report": report}
        done = subprocess.run([sys.executable, worker, json.dumps(spec)], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            with open(report, encoding="utf-8") as fh:
                trained = json.load(fh)
            os.remove(report)
            return attempt, trained
        if done.returncode != 3:
            raise RuntimeError(f"fastText training failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    raise RuntimeError(f"fastText training diverged (NaN) {max_attempts} times; lower --lr. {done.stderr.strip()[-500:]}")


def _copy_out(local_path: str, output: str) -> None:
    if "://" not in output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        shutil.copyfile(local_path, output)
        return
    with open(local_path, "rb") as src, FileSystems.create(output) as dst:
        shutil.copyfileobj(src, dst, length=16 * 1024 * 1024)


def train_math_classifier(config: TrainConfig) -> dict:
    """Sample the configured positive and negative sources and train; returns the training report."""
    if not config.output:
        raise ValueError("an --output path for the model is required")
    positive_files = expand_sources(config.positives)
    negative_files = expand_sources(config.negatives)
    positive_stats, negative_stats = ReadStats(), ReadStats()
    report = train_from_texts(
        sample_texts(positive_files, config.max_positives, seed=config.seed, stats=positive_stats),
        sample_texts(negative_files, config.max_negatives, seed=config.seed + 1, stats=negative_stats),
        config.output,
        fasttext_config=config.fasttext,
        validation_fraction=config.validation_fraction,
        max_tokens=config.max_tokens,
        seed=config.seed,
        extra_report={"sources": {"positives": positive_files, "negatives": negative_files}},
        balance_max_repeat=config.balance_max_repeat,
    )
    report["read"] = {"positives": positive_stats.to_dict(), "negatives": negative_stats.to_dict()}
    write_json(report_path(config.output), report)
    return report


def report_path(model_path: str) -> str:
    """Where the training report of the model at ``model_path`` is written."""
    return model_path + ".json"


def _optional_int(value: str) -> int | None:
    """An int, or None (no limit) for "all"/"none"."""
    return None if value.lower() in ("none", "all", "") else int(value)


def build_parser() -> argparse.ArgumentParser:
    """The CLI: every ``TrainConfig`` and ``FastTextConfig`` field as a flag (defaults: the paper's)."""
    defaults, ft = TrainConfig(), FastTextConfig()
    parser = argparse.ArgumentParser(prog="python -m classifiers.train", description=__doc__.split("\n")[0],
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", help="YAML file with any of the fields below (flags win over it)")
    parser.add_argument("--positives", nargs="+", help="math texts: Parquet/JSONL files, globs or folders")
    parser.add_argument("--negatives", nargs="+", help="other texts: Parquet/JSONL files, globs or folders")
    parser.add_argument("--output", help="model path (local, gs:// or s3://); the report goes to <output>.json")
    parser.add_argument("--max-positives", type=_optional_int, help=f"rows drawn, or 'all'; default {defaults.max_positives}")
    parser.add_argument("--max-negatives", type=_optional_int, help=f"rows drawn, or 'all'; default {defaults.max_negatives}")
    parser.add_argument("--validation-fraction", type=float, help=f"default {defaults.validation_fraction}")
    parser.add_argument("--max-tokens", type=int, help=f"default {defaults.max_tokens}")
    parser.add_argument("--seed", type=int, help=f"default {defaults.seed}")
    parser.add_argument("--balance-max-repeat", type=int,
                        help=f"repeat the smaller class's lines up to this many times, toward 1:1; default {defaults.balance_max_repeat}")
    own = {f.name for f in dataclasses.fields(TrainConfig)}
    for f in dataclasses.fields(FastTextConfig):
        flag = "fasttext-" + f.name if f.name in own else f.name  # --seed is the sampling seed
        parser.add_argument("--" + flag.replace("_", "-"), type=type(getattr(ft, f.name)), dest="ft_" + f.name,
                            help=f"fastText {f.name}, default {getattr(ft, f.name)}")
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """``TrainConfig`` from defaults, then ``--config`` YAML, then flags.

    Beam pipeline options are accepted like every command's: training runs in this process, so
    only the file-system ones (``--s3_region_name``, ...) have an effect, on reading the sources
    and writing the model. Any other unknown flag is refused with one line."""
    args, rest = build_parser().parse_known_args(argv)
    beam_args = beam_args_only(rest, "python -m classifiers.train")
    if beam_args:
        FileSystems.set_options(PipelineOptions(beam_args))
    given = vars(args)
    if "config" in given and not FileSystems.exists(given["config"]):
        raise InputError(f"--config {given['config']}: no such file; give a YAML file of the flags below")
    data, ft_data = merge_yaml_and_flags(given)
    return TrainConfig(**data, fasttext=FastTextConfig(**ft_data))


def merge_yaml_and_flags(given: dict) -> tuple[dict, dict]:
    """``(settings, fastText settings)`` from parsed flags over the ``--config`` YAML they name.

    Flags given on the command line win over the file; ``ft_``-prefixed flags and the YAML's
    ``fasttext:`` section make up the fastText settings.
    """
    given = dict(given)
    data: dict = {}
    if "config" in given:
        with FileSystems.open(given.pop("config")) as fh:
            data = yaml.safe_load(fh.read()) or {}
    ft_data = dict(data.pop("fasttext", {}) or {})
    for key, value in given.items():
        if key.startswith("ft_"):
            ft_data[key[3:]] = value
        else:
            data[key] = value
    return data, ft_data


def main(argv: Sequence[str] | None = None) -> dict:
    config = config_from_args(argv)
    if not config.positives or not config.negatives or not config.output:
        raise InputError("--positives, --negatives and --output are required; see python -m classifiers.train --help")
    for flag, sources in (("--positives", config.positives), ("--negatives", config.negatives)):
        try:
            expand_sources(sources)
        except SourceError as exc:
            raise InputError(f"{flag}: {exc}; give Parquet/JSONL files, globs or folders with a text column") from None
    try:
        report = train_math_classifier(config)
    except TrainingDataError as exc:
        raise InputError(f"{exc}; check --positives and --negatives") from None
    print(yaml.safe_dump({k: report[k] for k in ("model", "counts", "train_seconds", "validation")}, sort_keys=False),
          file=sys.stdout)
    return report


if __name__ == "__main__":
    main()
