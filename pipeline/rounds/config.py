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
    token_budget: int = 40_000_000_000  # round one of the paper kept the top 40B tokens
    positives_per_round: int = 500_000  # the paper: 500K positives ...
    negatives_per_round: int = 500_000  # ... and 500K negatives sampled from Common Crawl
    max_discovered_share: float = 0.5  # ours: at most this share of the positives are discovered pages
    saturation_overlap: float = 0.98  # stop when this share of the recalled tokens was recalled last round
    domain_min_share: float = discovery.DOMAIN_MIN_SHARE
    domain_min_pages: int = 1
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
        if self.token_budget < 1 or self.positives_per_round < 1 or self.negatives_per_round < 1:
            raise ValueError("token_budget, positives_per_round and negatives_per_round must be >= 1")
        for name in ("max_discovered_share", "saturation_overlap", "domain_min_share", "path_min_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
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
            p.add_argument("--seed", action="append", help="seed positives (repeatable): Parquet/JSONL files, globs, folders")
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
