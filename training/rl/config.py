"""Configuration trees of the GRPO and SFT jobs, with the paper's values as defaults.

Loaded with ``training.config.load_config``/``parse_job_args``: defaults < YAML < ``--a.b value``.
Every config validates itself on construction (``__post_init__``) and is written into
``config.json`` in the output directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from training.rl.data import COT_INSTRUCTION, FORMATS
from training.rl.losses import LOSS_TYPES


RL_METHODS = ("grpo", "ppo", "online_rft", "rft", "dpo")


@dataclass
class ModelConfig:
    """The policy: a checkpoint folder (``path``) or a from-scratch model spec (``config``: a dict or a file)."""

    path: str | None = None
    config: Any = None
    tokenizer: str | None = None  # defaults to ``path``
    dtype: str = "float32"
    device: str = "auto"
    gradient_checkpointing: bool = False
    threads: int = 0  # CPU threads for torch (0: torch's default); 1 is fastest on a busy machine
    seed: int = 0


@dataclass
class QuestionDataConfig:
    """RL questions with gold answers (JSONL/Parquet; GSM8K, MATH, CMATH or generic question/answer)."""

    path: str | None = None
    format: str = "auto"
    benchmark: str | None = None  # answer-checking rules for the generic format (default math)
    question_field: str = "question"
    answer_field: str = "answer"
    limit: int | None = None
    use_chat_template: bool = True
    instruction: str | None = COT_INSTRUCTION
    max_prompt_tokens: int = 1024
    eval_path: str | None = None  # optional held-out questions scored every ``eval_every`` steps
    eval_limit: int = 64

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"data.format must be one of {FORMATS}, got {self.format!r}")


@dataclass
class SamplingConfig:
    """Sampling of the G outputs (paper: G = 64, max length 1024)."""

    group_size: int = 64
    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    prompts_per_call: int = 8
    backend: str = "hf"  # hf | vllm

    def __post_init__(self) -> None:
        if self.group_size < 1 or self.max_new_tokens < 1:
            raise ValueError("sampling.group_size and sampling.max_new_tokens must be >= 1")
        if self.backend not in ("hf", "vllm"):
            raise ValueError("sampling.backend must be hf or vllm")


@dataclass
class LossConfig:
    """The GRPO loss (paper: beta 0.04, KL in the loss; clip 0.2 is PPO's usual value)."""

    beta: float = 0.04  # GRPO: KL in the loss; PPO: KL per token in the reward (equation 2)
    clip_eps: float = 0.2
    clip_eps_high: float | None = None  # clip-higher (DAPO: 0.28); None = clip_eps (symmetric, the paper)
    loss_type: str = "grpo"  # grpo (paper) | token (DAPO) | dr_grpo
    scale_advantages: bool = True  # divide by the group std (False: Dr. GRPO)
    advantage_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss.loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.beta < 0 or not 0 <= self.clip_eps < 1:
            raise ValueError("loss.beta must be >= 0 and loss.clip_eps in [0, 1)")
        if self.clip_eps_high is not None and self.clip_eps_high < 0:
            raise ValueError("loss.clip_eps_high must be >= 0")


@dataclass
class PPOConfig:
    """PPO's value model and GAE (``method: ppo``; the paper gives no PPO values: usual LLM ones here)."""

    value_path: str | None = None  # a checkpoint for the value model; default: a copy of the policy's body + a head
    value_lr: float | None = None  # default: optim.lr
    gamma: float = 1.0
    lam: float = 0.95
    value_clip: float = 0.2
    whiten_advantages: bool = True

    def __post_init__(self) -> None:
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.lam <= 1.0):
            raise ValueError("ppo.gamma and ppo.lam must be in [0, 1]")


@dataclass
class DPOConfig:
    """DPO on pairs from the initial policy's own samples (``method: dpo``; paper appendix A.1.3)."""

    beta: float = 0.1
    length_normalise: bool = True  # 1/|o| log-probs as in A.1.3 (False: summed, as the original DPO / TRL)
    pairs_per_question: int = 8

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.pairs_per_question < 1:
            raise ValueError("dpo.beta must be > 0 and dpo.pairs_per_question >= 1")


@dataclass
class OptimConfig:
    """AdamW with a constant learning rate after an optional linear warm-up (paper RL: lr 1e-6)."""

    lr: float = 1e-6
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError("optim.lr must be > 0")


@dataclass
class PRMConfig:
    """The process reward model (used when ``supervision: process``; paper RM lr 2e-5, replay 10%)."""

    path: str | None = None  # a PRM or causal-LM checkpoint; default: a copy of the initial policy's body
    train_data: str | None = None  # step-labelled JSONL/Parquet (prompt/steps/labels or Math-Shepherd)
    initial_epochs: int = 1  # on train_data and on samples of the initial policy, before RL starts
    initial_questions: int = 64  # questions sampled (G each) to label by outcome before RL, 0 for none
    epochs_per_iteration: int = 1
    lr: float = 2e-5
    batch_size: int = 32
    micro_batch_size: int = 16
    replay_fraction: float = 0.1
    replay_capacity: int = 200_000

    def __post_init__(self) -> None:
        if not 0.0 <= self.replay_fraction <= 1.0:
            raise ValueError("prm.replay_fraction must be in [0, 1]")


@dataclass
class ToyConfig:
    """Build the toy addition task (data, tokenizer, tiny model) inside the output directory and warm
    the model up with SFT on it first; for the tiny configs and smoke tests (fresh clone, CPU)."""

    enabled: bool = False
    num_questions: int = 400
    max_operand: int = 9
    num_operands: int = 2
    noise: float = 0.5
    sft_steps: int = 150
    sft_batch_size: int = 32
    sft_lr: float = 3e-3
    hidden_size: int = 64
    num_layers: int = 2
    vocab_size: int = 400
    instruction: bool = True  # append the CoT instruction to the toy prompts (False: shorter, faster)
    seed: int = 0


@dataclass
class GRPOJobConfig:
    """``python -m training.grpo``: every sampling method of the paper's Table 10 through one trainer.

    ``method``: ``grpo`` (outcome or process supervision, iterative), ``ppo`` (value model, GAE,
    KL in the reward), ``online_rft`` (policy samples, GC 1 if correct), ``rft`` (offline: samples
    of the initial policy drawn once, GC 1 if correct) or ``dpo`` (offline pairs of those samples).
    """

    method: str = "grpo"  # grpo | ppo | online_rft | rft | dpo
    supervision: str = "outcome"  # outcome | process
    model: ModelConfig = field(default_factory=ModelConfig)
    data: QuestionDataConfig = field(default_factory=QuestionDataConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    prm: PRMConfig = field(default_factory=PRMConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    toy: ToyConfig = field(default_factory=ToyConfig)
    offline_questions: int = 0  # rft/dpo: questions sampled once (G each); 0 = as many as the online run sees
    reward: str = "math"  # "math" (rule-based checker) or "package.module:function"
    reward_workers: int = 0
    iterations: int = 1
    steps_per_iteration: int = 100
    batch_size: int = 1024  # outputs per step (questions per step = batch_size / group_size)
    mu: int = 1
    micro_batch_size: int = 8
    output_dir: str = "runs/grpo"
    save_every: int = 0  # steps between checkpoints (0: only the final one)
    eval_every: int = 0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in RL_METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {RL_METHODS}")
        if self.supervision == "process" and self.method != "grpo":
            raise ValueError("supervision: process is implemented for method grpo only")
        if self.supervision not in ("outcome", "process"):
            raise ValueError(f"supervision must be outcome or process, got {self.supervision!r}")
        if self.batch_size % self.sampling.group_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of sampling.group_size ({self.sampling.group_size})"
            )
        if self.iterations < 1 or self.steps_per_iteration < 1 or self.mu < 1 or self.micro_batch_size < 1:
            raise ValueError("iterations, steps_per_iteration, mu and micro_batch_size must be >= 1")
        if not self.toy.enabled and not self.data.path:
            raise ValueError("set data.path (questions with gold answers) or enable toy")
        if not self.toy.enabled and not (self.model.path or self.model.config):
            raise ValueError("set model.path (a checkpoint) or model.config (a model spec), or enable toy")

    @property
    def questions_per_step(self) -> int:
        return self.batch_size // self.sampling.group_size


@dataclass
class PairDataConfig:
    """(prompt, response) pairs for SFT / offline RFT (JSONL/Parquet; chat ``messages`` rows accepted)."""

    path: str | None = None
    prompt_field: str = "prompt"
    response_field: str = "response"
    gold_field: str = "gold"
    benchmark: str = "math"
    limit: int | None = None
    use_chat_template: bool = True
    instruction: str | None = None  # e.g. the CoT instruction, appended to each prompt
    max_prompt_tokens: int = 1024
    max_response_tokens: int = 1024


@dataclass
class SFTOptimConfig(OptimConfig):
    """Paper instruction tuning: constant learning rate 5e-5."""

    lr: float = 5e-5


@dataclass
class SFTJobConfig:
    """``python -m training.sft``: supervised fine-tuning (or offline RFT) with loss on response tokens only."""

    method: str = "sft"  # sft | rft (offline samples, trained on the correct ones)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: PairDataConfig = field(default_factory=PairDataConfig)
    optim: SFTOptimConfig = field(default_factory=SFTOptimConfig)
    toy: ToyConfig = field(default_factory=ToyConfig)
    steps: int = 500
    batch_size: int = 256
    micro_batch_size: int = 8
    loss_type: str = "token"  # mean over all response tokens of the batch; "grpo" = per-response mean
    reward: str = "math"  # for rft
    output_dir: str = "runs/sft"
    save_every: int = 0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("sft", "rft"):
            raise ValueError(f"method must be sft or rft, got {self.method!r}")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}")
        if self.steps < 1 or self.batch_size < 1 or self.micro_batch_size < 1:
            raise ValueError("steps, batch_size and micro_batch_size must be >= 1")
        if not self.toy.enabled and not self.data.path:
            raise ValueError("set data.path ((prompt, response) pairs) or enable toy")
        if not self.toy.enabled and not (self.model.path or self.model.config):
            raise ValueError("set model.path (a checkpoint) or model.config (a model spec), or enable toy")
