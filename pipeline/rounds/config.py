"""Configuration of the recall rounds: one dataclass, the paper's values as defaults.

Every field is a command-line flag (``--token-budget`` or ``--token_budget``) and a key of the
``--config`` YAML file; flags win over the file, the file over the defaults. The fastText
settings are the fields of ``classifiers.train.FastTextConfig`` (``--dim``, ``--lr``, ...;
``fasttext:`` section in YAML).
"""
from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from classifiers.normalize import DEFAULT_MAX_TOKENS
from classifiers.train import FastTextConfig, merge_yaml_and_flags
from pipeline.rounds import discovery


@dataclass
class RoundsConfig:
    """The recall loop (DeepSeekMath section 2.1, steps 2-5)."""

    pool: str = ""  # folder/glob of pool Parquet (the dedup output)
    seed: list[str] = field(default_factory=list)  # seed positives: Parquet/JSONL with `text` (OpenWebMath)
    output: str = ""
    rounds: int = 4  # the paper ran four
    token_budget: int | None = None  # None: the calibrated cut (calibration.py); N: the paper's top-N-tokens cut (40B)
    cut_beta: float = 0.5  # the calibrated cut maximises the implied F-beta; < 1 weighs precision above recall
    markup_min_formulas: int = 1  # pages with this many formulas are the cut's positive evidence
    markup_floor_quantile: float = 0.5  # a markup page is recalled above this quantile of the negatives' scores
    renderer_floor_quantile: float = 0.75  # a page loading MathJax/KaTeX without formulas: above this quantile (1: off)
    min_positive_evidence: int = 10  # fewer markup pages: the held-out seed positives calibrate the cut
    small_data_epochs: int = 10  # at most this many fastText epochs when the training set is small ...
    epoch_scale_examples: int = 100_000  # ... i.e. epochs = max(epoch, min(small_data_epochs, ceil(epoch * this / n)))
    positives_per_round: int = 500_000  # the paper: 500K positives ...
    negatives_per_round: int = 500_000  # ... and 500K negatives sampled from Common Crawl
    balance_max_repeat: int = 32  # ours: the smaller class's lines are repeated up to this many times (1:1, as the paper's 500K + 500K)
    max_discovered_share: float = 0.5  # ours: at most this share of the positives are discovered pages
    saturation_new_share: float = 0.02  # stop when at most this share of the recalled tokens is new (paper: ~98% old)
    domain_min_share: float = discovery.DOMAIN_MIN_SHARE  # on the Wilson lower bound of the recalled share
    domain_min_pages: int = discovery.DOMAIN_MIN_PAGES
    path_min_share: float = discovery.PATH_MIN_SHARE
    path_min_pages: int = discovery.PATH_MIN_PAGES
    path_max_depth: int = discovery.PATH_MAX_DEPTH
    paths: str | None = None  # a hand-edited paths.tsv used by every round instead of the proposals
    validation_fraction: float = 0.1
    max_tokens: int = DEFAULT_MAX_TOKENS  # classifier tokens per page
    tokenizer: str | None = None  # local Hugging Face tokenizer folder for token counts; default words+CJK chars
    batch_size: int = 256
    num_shards: int = 0  # recalled-output shards; 0: the runner decides
    random_seed: int = 0
    fasttext: FastTextConfig = field(default_factory=FastTextConfig)

    def __post_init__(self) -> None:
        if isinstance(self.fasttext, dict):
            self.fasttext = FastTextConfig(**self.fasttext)
        if isinstance(self.seed, str):
            self.seed = [self.seed]
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.token_budget is not None and self.token_budget < 1:
            raise ValueError(f"token_budget must be >= 1 (or unset for the calibrated cut), got {self.token_budget}")
        if self.positives_per_round < 1 or self.negatives_per_round < 1:
            raise ValueError("positives_per_round and negatives_per_round must be >= 1")
        if self.balance_max_repeat < 1:
            raise ValueError(f"balance_max_repeat must be >= 1, got {self.balance_max_repeat}")
        if self.markup_min_formulas < 1 or self.min_positive_evidence < 1 or self.small_data_epochs < 1:
            raise ValueError("markup_min_formulas, min_positive_evidence and small_data_epochs must be >= 1")
        for name in ("max_discovered_share", "saturation_new_share", "domain_min_share", "path_min_share",
                     "markup_floor_quantile", "renderer_floor_quantile"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.cut_beta > 0:
            raise ValueError(f"cut_beta must be > 0, got {self.cut_beta}")
        if self.path_max_depth < 0 or self.path_min_pages < 1:
            raise ValueError("path_max_depth must be >= 0 and path_min_pages >= 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_FT_FIELDS = {f.name for f in dataclasses.fields(FastTextConfig)}


def _number(kind: type):
    """argparse type for ints that also accepts ``4e10``-style numbers."""
    if kind is int:
        return lambda text: int(float(text)) if any(c in text for c in ".eE") else int(text)
    return kind


def _optional_number(text: str) -> int | None:
    return None if text.strip().lower() in ("", "none", "calibrated") else _number(int)(text)


def _flag(name: str) -> list[str]:
    return ["--" + name.replace("_", "-")] + (["--" + name] if "_" in name else [])


def build_parser() -> argparse.ArgumentParser:
    defaults, ft = RoundsConfig(), FastTextConfig()
    p = argparse.ArgumentParser(prog="python -m pipeline.rounds", description=RoundsConfig.__doc__,
                                argument_default=argparse.SUPPRESS, allow_abbrev=False)
    p.add_argument("--config", help="YAML file with any of the options below (flags win over it)")
    for f in dataclasses.fields(RoundsConfig):
        if f.name == "fasttext":
            continue
        default = getattr(defaults, f.name)
        if f.name == "seed":
            p.add_argument("--seed", action="extend", nargs="+", help="seed positives (several, or repeated): Parquet/JSONL files, globs, folders")
        elif f.name == "token_budget":
            p.add_argument("--token-budget", "--token_budget", dest="token_budget", type=_optional_number,
                           help="keep the top N tokens (the paper: 40B) instead of the calibrated cut; 'none' for the cut")
        elif f.name in ("pool", "output", "paths", "tokenizer"):
            p.add_argument(*_flag(f.name), dest=f.name, help=f"default {default!r}")
        else:
            p.add_argument(*_flag(f.name), dest=f.name, type=_number(type(default)), help=f"default {default!r}")
    own = {f.name for f in dataclasses.fields(RoundsConfig)}
    for name in sorted(_FT_FIELDS):
        flag = "fasttext_" + name if name in own else name  # --seed is the seed corpus; --fasttext-seed fastText's
        p.add_argument(*_flag(flag), dest="ft_" + name, type=_number(type(getattr(ft, name))),
                       help=f"fastText {name}, default {getattr(ft, name)!r}")
    return p


def parse_config(argv: Sequence[str] | None) -> tuple[RoundsConfig, list[str]]:
    """``(RoundsConfig, remaining Beam args)`` from defaults, ``--config`` YAML and flags."""
    args, beam_args = build_parser().parse_known_args(argv)
    data, ft_data = merge_yaml_and_flags(vars(args))
    unknown = set(data) - {f.name for f in dataclasses.fields(RoundsConfig)}
    if unknown:
        raise ValueError(f"unknown rounds options: {sorted(unknown)}")
    cfg = RoundsConfig(**data, fasttext=FastTextConfig(**ft_data))
    if not cfg.pool or not cfg.seed or not cfg.output:
        raise SystemExit("--pool, --seed and --output are required")
    return cfg, beam_args
