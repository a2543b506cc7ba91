"""Continued pre-training (or pre-training from scratch) of a causal LM on weighted text sources.

    python -m training.pretrain --config configs/pretrain/tiny.yaml [--output-dir DIR] [--key value ...]
    torchrun --nproc_per_node 8 -m training.pretrain --config configs/pretrain/NAME.yaml --train.parallel fsdp

Method (DeepSeekMath, sections 2.2-2.3): next-token prediction on a fixed mixture of sources
(the paper: 56% math corpus, 4% AlgebraicStack, 10% arXiv, 20% GitHub code, 10% Common Crawl),
AdamW with beta1 0.9, beta2 0.95, weight decay 0.1, 2,000 warm-up steps, then the learning
rate stepped down to 31.6% of the peak after 80% of the steps and to 10% after 90%
(``multistep``); peak 5.3e-4 with 4M-token batches of 4K-token sequences for the 1.3B corpus
comparison runs (the defaults here), 4.2e-4 with 10M-token batches for the 7B model.

The job streams the sources (``training.data``: Parquet or JSONL, local, gs:// or s3://, read
lazily, tokenised on the fly, packed with EOS between documents), reaches the batch size in
tokens by gradient accumulation, clips gradients, uses bf16 autocast on GPUs, and runs on one
CPU, one GPU or many GPUs under ``torchrun`` (DDP, or FSDP2 with ``--train.parallel fsdp``).
Checkpoints (``training.checkpoint``) resume exactly with ``--resume``. It writes
``metrics.jsonl``, ``summary.json``, ``curves.png``, ``checkpoints/`` and the final model in
``final/`` under the output folder.

How it departs from the paper (which does not describe its training code):
- The loss of a step is the mean over all next-token targets of the global batch, computed as
  a sum divided by the global target count, so it does not depend on how the batch is split
  into micro-batches or ranks.
- Sequences are cut from the concatenated documents without overlap, so each sequence's first
  token is not a target (1 target in ``seq_len`` is lost).
- Gradient clipping at norm 1.0 and AdamW eps 1e-8 are not stated in the paper (they are
  DeepSeek LLM's settings). Norm weights and biases get no weight decay by default.
- The warm-up is linear from ``peak / warmup_steps`` at step 0 (``training.schedules``).
- Sources are mixed deterministically by tokens (``training.data.mixture``) rather than sampled.
"""
from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import resource
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from pipeline.paths import REPO_ROOT
from training.checkpoint import latest_checkpoint, load_trainer_state, restore_training_state, save_checkpoint
from training.config import config_to_dict, parse_job_args
from training.data.loader import (
    DataConfig,
    Prefetcher,
    RankBatches,
    merge_data_states,
    resolve_sources,
    summarise_streams,
)
from training.data.mixture import normalise_weights, realised_shares
from training.data.readers import DocumentReader
from training.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    broadcast_object,
    cleanup,
    gradient_sync,
    init_distributed,
    unwrap,
    wrap_model,
)
from training.modeling import load_model, load_tokenizer, train_bpe_tokenizer
from training.plots import plot_training_curves
from training.schedules import SCHEDULES, make_scheduler

log = logging.getLogger("training.pretrain")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class TokenizerConfig:
    """The tokenizer: a local Hugging Face folder, else the ``--init-from`` model's, else trained here."""

    path: str = ""
    train_vocab_size: int = 8192  # byte-level BPE trained on the sources when no tokenizer is given
    train_documents: int = 5000  # documents (split over the sources by weight) to train it on


@dataclass
class ModelConfig:
    """The model for a from-scratch run (``config``) and how to run it."""

    config: dict = field(default_factory=dict)  # e.g. {model_type: llama, hidden_size: 64, ...}; unused with init_from
    dtype: str = "float32"  # parameter dtype; keep float32 with bf16 autocast
    attn_implementation: str = ""  # sdpa, eager, flash_attention_2, ... ("" = the library's default)
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile the model

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {', '.join(DTYPES)}")


@dataclass
class OptimConfig:
    """AdamW and the learning-rate schedule (the paper's values as defaults)."""

    lr: float = 5.3e-4  # peak (the paper's 1.3B runs; 4.2e-4 for the 7B model)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    decay_norms_and_biases: bool = False
    grad_clip: float = 1.0  # max global gradient norm (0: no clipping)
    schedule: str = "multistep"  # multistep (paper), cosine, constant
    warmup_steps: int = 2000
    milestones: list[float] = field(default_factory=lambda: [0.8, 0.9])  # multistep: fractions of total steps
    milestone_factors: list[float] = field(default_factory=lambda: [0.316, 0.1])
    min_lr_ratio: float = 0.1  # cosine: final LR as a fraction of the peak

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {', '.join(SCHEDULES)}")
        if len(self.milestones) != len(self.milestone_factors):
            raise ValueError("optim.milestones and optim.milestone_factors must have the same length")


@dataclass
class TrainConfig:
    """Batch, length of the run, precision, parallelism and bookkeeping."""

    batch_tokens: int = 4 * 1024 * 1024  # global batch in tokens (a multiple of data.seq_len)
    micro_batch_size: int = 4  # max sequences per forward pass per rank; the rest is gradient accumulation
    total_tokens: int = 150_000_000_000  # length of the run (the paper's 1.3B runs: 150B tokens)
    max_steps: int = 0  # when > 0, the run's length in steps (overrides total_tokens)
    precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU), bf16, fp32
    device: str = "auto"
    parallel: str = "auto"  # auto (DDP under torchrun), none, ddp, fsdp
    seed: int = 0  # model initialisation and dropout
    num_threads: int = 0  # torch CPU threads (0: torch's default)
    log_every: int = 10  # steps between metrics.jsonl records
    checkpoint_every: int = 1000  # steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2  # newest checkpoints kept (0: all)
    stop_after_steps: int = 0  # stop (with a checkpoint) after this many steps in this invocation
    progress: bool = True  # tqdm progress bar on rank 0

    def __post_init__(self):
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError("train.precision must be auto, bf16 or fp32")
        if self.batch_tokens <= 0 or self.micro_batch_size <= 0:
            raise ValueError("train.batch_tokens and train.micro_batch_size must be positive")


@dataclass
class PretrainConfig:
    """Continued pre-training: ``python -m training.pretrain --config FILE [--output-dir DIR] [--key value]``."""

    output_dir: str = "out/pretrain"
    init_from: str = ""  # local Hugging Face model folder to continue from (else model.config)
    resume: bool = False  # continue from the newest checkpoint in output_dir
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class BatchLayout:
    """How a global batch of ``batch_tokens`` splits into sequences, ranks and micro-batches."""

    sequences: int  # sequences per global batch
    per_rank: int  # sequences per rank
    accumulation: int  # micro-batches per rank per step
    total_steps: int
    micro_batch: int  # sequences per forward pass (<= train.micro_batch_size, divides per_rank)


def batch_layout(cfg: PretrainConfig, world_size: int) -> BatchLayout:
    """Check that the batch divides evenly and compute the run's number of steps."""
    seq_len = cfg.data.seq_len
    if cfg.train.batch_tokens % seq_len:
        raise ValueError(f"train.batch_tokens ({cfg.train.batch_tokens}) must be a multiple of data.seq_len ({seq_len})")
    sequences = cfg.train.batch_tokens // seq_len
    if sequences % world_size:
        raise ValueError(f"{sequences} sequences per batch cannot be split over {world_size} ranks")
    per_rank = sequences // world_size
    # The largest micro-batch that is at most train.micro_batch_size and divides the rank's share.
    micro = max(m for m in range(1, min(cfg.train.micro_batch_size, per_rank) + 1) if per_rank % m == 0)
    total = cfg.train.max_steps or math.ceil(cfg.train.total_tokens / cfg.train.batch_tokens)
    if total <= 0:
        raise ValueError("the run has no steps: set train.max_steps or train.total_tokens")
    return BatchLayout(sequences, per_rank, per_rank // micro, total, micro)


# ---------------------------------------------------------------------------------------------
# Pure pieces
# ---------------------------------------------------------------------------------------------
def next_token_loss_sum(logits: torch.Tensor, input_ids: torch.Tensor,
                        target_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Summed cross-entropy of predicting ``input_ids[:, t + 1]`` from position ``t`` (in float32).

    ``target_mask`` (shape ``(batch, seq_len - 1)``) drops targets where it is False. Dividing
    by the number of counted targets of the whole global batch gives the mean loss.
    """
    targets = input_ids[:, 1:]
    if target_mask is not None:
        targets = targets.masked_fill(~target_mask, -100)
    # Shift the targets, not the logits: padding the last position's target avoids copying the logits.
    targets = F.pad(targets, (0, 1), value=-100)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                           ignore_index=-100, reduction="sum")


def optimizer_groups(model: torch.nn.Module, weight_decay: float, decay_norms_and_biases: bool = False) -> list[dict]:
    """AdamW parameter groups: matrices and embeddings decay; norm weights and biases (1-D) do not."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 or decay_norms_and_biases else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def autocast_context(precision: str, device: torch.device):
    """bf16 autocast on GPU for ``auto``/``bf16``, on CPU only for ``bf16``; else a no-op."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def peak_memory_mib(device: torch.device) -> dict:
    """Peak resident memory of this process (and peak allocated GPU memory) in MiB."""
    out = {"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------
def _sample_texts_for_tokenizer(cfg: PretrainConfig, sources) -> list[str]:
    weights = normalise_weights([s.weight for s in sources])
    texts = []
    for source, weight in zip(sources, weights):
        reader = DocumentReader(source.name, source.files, source.text_field, source.format,
                                seed=cfg.data.seed, block_lines=cfg.data.block_lines)
        want = max(1, round(cfg.tokenizer.train_documents * weight))
        for _ in range(want):
            texts.append(reader.next_text())
            if reader.state_dict()["epoch"] > 0:
                break
    return texts


def resolve_tokenizer(cfg: PretrainConfig, sources, info: DistInfo, checkpoint: Path | None):
    """Load the tokenizer, or train a byte-level BPE one on the sources (rank 0) and save it."""
    if checkpoint is not None:
        return load_tokenizer(checkpoint)
    if cfg.tokenizer.path:
        return load_tokenizer(cfg.tokenizer.path)
    if cfg.init_from:
        return load_tokenizer(cfg.init_from)
    target = Path(cfg.output_dir) / "tokenizer"
    if info.is_main and not (target / "tokenizer.json").is_file():
        texts = _sample_texts_for_tokenizer(cfg, sources)
        log.info("training a byte-level BPE tokenizer (vocab %d) on %d documents", cfg.tokenizer.train_vocab_size,
                 len(texts))
        train_bpe_tokenizer(texts, vocab_size=cfg.tokenizer.train_vocab_size, save_dir=target)
    barrier()
    return load_tokenizer(target)


def build_model(cfg: PretrainConfig, tokenizer, checkpoint: Path | None):
    """The model: from the checkpoint being resumed, from ``init_from``, or from ``model.config``."""
    dtype = DTYPES[cfg.model.dtype]
    attn = cfg.model.attn_implementation or None
    if checkpoint is not None:
        return load_model(checkpoint, dtype=dtype, attn_implementation=attn)
    if cfg.init_from:
        if not Path(cfg.init_from).is_dir():
            raise FileNotFoundError(f"--init-from {cfg.init_from!r} is not a local model folder")
        return load_model(cfg.init_from, dtype=dtype, attn_implementation=attn)
    if not cfg.model.config:
        raise ValueError("set --init-from (a local model folder) or model.config (a from-scratch model)")
    spec = dict(cfg.model.config)
    spec.setdefault("max_position_embeddings", cfg.data.seq_len)
    if spec["max_position_embeddings"] < cfg.data.seq_len:
        raise ValueError(f"model max_position_embeddings {spec['max_position_embeddings']} < data.seq_len "
                         f"{cfg.data.seq_len}")
    return load_model(spec, tokenizer=tokenizer, dtype=dtype, seed=cfg.train.seed, attn_implementation=attn)


class _StopFlag:
    """Set by SIGTERM/SIGINT (preemption): the loop checkpoints at the end of the step and exits."""

    def __init__(self):
        self.raised = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGUSR1):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        log.warning("signal %s: stopping after this step with a checkpoint", signum)
        self.raised = True

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _MetricsWriter:
    """Appends records to ``metrics.jsonl`` (rank 0); on resume drops records past the checkpoint."""

    def __init__(self, path: Path, enabled: bool, resume_step: int | None):
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            path.write_text("", encoding="utf-8")
        elif path.exists():
            kept = []
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= resume_step:
                        kept.append(line)
                except ValueError:
                    continue
            path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def run(cfg: PretrainConfig) -> dict:
    """Train per ``cfg``; returns the summary (also written to ``summary.json``)."""
    info = init_distributed(cfg.train.device)
    try:
        return _train(cfg, info)
    finally:
        # The DDP reducer must be freed while the process group is still registered: freeing it
        # after ``destroy_process_group`` destroys the gloo group from C++ with the GIL held, which
        # can deadlock with gloo's worker threads (pytorch/pytorch#56297).
        gc.collect()
        cleanup()


def _train(cfg: PretrainConfig, info: DistInfo) -> dict:
    prefetcher = None
    stop = _StopFlag()
    try:
        if cfg.train.num_threads > 0:
            torch.set_num_threads(cfg.train.num_threads)
        if info.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        out = Path(cfg.output_dir)
        checkpoint = latest_checkpoint(out) if cfg.resume else None
        if cfg.resume and checkpoint is None:
            log.warning("--resume: no checkpoint in %s; starting from scratch", out)
        if not cfg.resume and latest_checkpoint(out) is not None:
            raise FileExistsError(f"{out} already holds checkpoints: pass --resume to continue that run, or choose "
                                  f"another --output-dir")
        layout = batch_layout(cfg, info.world_size)
        sources = resolve_sources(cfg.data.sources, base=str(REPO_ROOT))
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
        barrier()

        tokenizer = resolve_tokenizer(cfg, sources, info, checkpoint)
        model = build_model(cfg, tokenizer, checkpoint)
        if len(tokenizer) > model.get_input_embeddings().num_embeddings:
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only "
                             f"{model.get_input_embeddings().num_embeddings} embeddings")
        if cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.config.use_cache = False
        torch.manual_seed(cfg.train.seed + 1000 * info.rank)
        n_params = sum(p.numel() for p in model.parameters())
        model = wrap_model(model, cfg.train.parallel, info)
        model.train()
        optimizer = torch.optim.AdamW(
            optimizer_groups(model, cfg.optim.weight_decay, cfg.optim.decay_norms_and_biases),
            lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2), eps=cfg.optim.eps,
            fused=True,  # the fused kernel exists for CPU and CUDA (float parameters); the Trainer's default too
        )
        scheduler = make_scheduler(optimizer, cfg.optim.schedule, layout.total_steps, cfg.optim.warmup_steps,
                                   cfg.optim.milestones, cfg.optim.milestone_factors, cfg.optim.min_lr_ratio)
        batches = RankBatches(sources, tokenizer, cfg.data, layout.sequences, info.rank, info.world_size)

        step, tokens_seen, elapsed_before = 0, 0, 0.0
        if checkpoint is not None:
            state = load_trainer_state(checkpoint)
            restore_training_state(state, model, optimizer, scheduler, info)
            batches.load_state_dict(state["data"])
            step, tokens_seen, elapsed_before = state["step"], state["tokens_seen"], state["elapsed_s"]
            if info.is_main:
                log.info("resumed from %s at step %d", checkpoint, step)
        forward_model = torch.compile(model) if cfg.model.compile else model
        metrics = _MetricsWriter(out / "metrics.jsonl", info.is_main, step if checkpoint is not None else None)
        prefetcher = Prefetcher(batches, cfg.data.prefetch)
        progress = None
        if info.is_main and cfg.train.progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=layout.total_steps, initial=step, desc="pretrain", unit="step", dynamic_ncols=True)

        tokens_per_step = layout.sequences * cfg.data.seq_len
        constant_targets = layout.sequences * (cfg.data.seq_len - 1)
        micro = layout.micro_batch
        start_step, data_state = step, batches.state_dict()
        run_start = time.perf_counter()
        window_start, window_tokens, window_losses = run_start, 0, []
        last_saved = step if checkpoint is not None else -1
        last_loss = final_loss = float("nan")
        stopped_early = False

        def checkpoint_now(at_step: int) -> None:
            nonlocal last_saved
            merged = merge_data_states(all_gather_objects(data_state))
            save_checkpoint(out, at_step, model, optimizer, scheduler, tokenizer, info, {
                "data": merged,
                "tokens_seen": tokens_seen,
                "elapsed_s": elapsed_before + time.perf_counter() - run_start,
                "config": config_to_dict(cfg),
            }, cfg.train.keep_checkpoints)
            last_saved = at_step

        while step < layout.total_steps:
            batch, data_state = prefetcher.next()
            ids = batch.input_ids.to(info.device, non_blocking=True)
            positions = batch.position_ids.to(info.device) if batch.position_ids is not None else None
            mask = batch.target_mask.to(info.device) if batch.target_mask is not None else None
            if mask is None:
                global_targets = float(constant_targets)
            else:
                global_targets = all_reduce_sum(mask.sum().to(torch.float64)).item()
            lr = scheduler.get_last_lr()[0]
            loss_sum = torch.zeros((), dtype=torch.float64, device=info.device)
            for k in range(layout.accumulation):
                rows = slice(k * micro, (k + 1) * micro)
                with gradient_sync(model, k == layout.accumulation - 1):
                    with autocast_context(cfg.train.precision, info.device):
                        logits = forward_model(input_ids=ids[rows], use_cache=False,
                                               position_ids=positions[rows] if positions is not None else None).logits
                        loss = next_token_loss_sum(logits, ids[rows], mask[rows] if mask is not None else None)
                    # DDP/FSDP average gradients over ranks; scale so the result is the global mean.
                    (loss * (info.world_size / max(global_targets, 1.0))).backward()
                loss_sum += loss.detach().to(torch.float64)
            grad_norm = None
            if cfg.optim.grad_clip > 0:
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                if hasattr(grad_norm, "full_tensor"):
                    grad_norm = grad_norm.full_tensor()
                grad_norm = float(grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += tokens_per_step
            window_tokens += tokens_per_step
            last_loss = all_reduce_sum(loss_sum).item() / max(global_targets, 1.0)
            if not math.isfinite(last_loss):
                raise FloatingPointError(f"loss is {last_loss} at step {step}; lower optim.lr or check the data")
            window_losses.append(last_loss)

            interrupt = stop.raised or (cfg.train.stop_after_steps and step - start_step >= cfg.train.stop_after_steps)
            if info.distributed:
                flag = torch.tensor([1.0 if interrupt else 0.0], device=info.device)
                interrupt = all_reduce_sum(flag).item() > 0
            if step % cfg.train.log_every == 0 or step == layout.total_steps or interrupt:
                now = time.perf_counter()
                tok_s = window_tokens / max(now - window_start, 1e-9)
                window_loss = final_loss = sum(window_losses) / len(window_losses)
                window_start, window_tokens, window_losses = now, 0, []
                emitted = torch.tensor([sum(s["tokens_emitted"][i] for s in data_state["streams"].values())
                                        for i in range(len(sources))], dtype=torch.float64, device=info.device)
                emitted = all_reduce_sum(emitted).tolist()
                record = {"step": step, "loss": window_loss, "step_loss": last_loss, "lr": lr, "grad_norm": grad_norm,
                          "tokens": tokens_seen,
                          "tokens_per_s": round(tok_s, 1), "elapsed_s": round(elapsed_before + now - run_start, 3),
                          "source_tokens": {s.name: int(n) for s, n in zip(sources, emitted)}}
                metrics.write(record)
                if progress is not None:
                    progress.set_postfix(loss=f"{window_loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:,.0f}")
            if progress is not None:
                progress.update(1)
            if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0 and step < layout.total_steps:
                checkpoint_now(step)
            if interrupt and step < layout.total_steps:
                stopped_early = True
                break

        if progress is not None:
            progress.close()
        loop_memory = peak_memory_mib(info.device)
        prefetcher.close()
        prefetcher = None
        if last_saved != step:
            checkpoint_now(step)
        summary = _finish(cfg, info, out, model, tokenizer, sources, data_state, layout, step, tokens_seen,
                          elapsed_before + time.perf_counter() - run_start, start_step, final_loss, stopped_early,
                          n_params, loop_memory)
        return summary
    finally:
        stop.restore()
        if prefetcher is not None:
            prefetcher.close()


def _finish(cfg, info, out, model, tokenizer, sources, data_state, layout, step, tokens_seen, elapsed, start_step,
            final_loss, stopped_early, n_params, loop_memory) -> dict:
    """Final model, curves PNG and ``summary.json`` (rank 0)."""
    data_summary = summarise_streams(merge_data_states(all_gather_objects(data_state)))
    memory = all_gather_objects({**peak_memory_mib(info.device),
                                 **{f"{k}_training_loop": v for k, v in loop_memory.items()}})
    completed = step >= layout.total_steps
    if completed:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if info.is_main:
            unwrap(model).save_pretrained(str(out / "final"), state_dict=state, safe_serialization=True)
            tokenizer.save_pretrained(str(out / "final"))
    summary = {}
    if info.is_main:
        weights = normalise_weights([s.weight for s in sources])
        shares = realised_shares(data_summary["tokens"])
        summary = {
            "completed": completed,
            "stopped_early": stopped_early,
            "steps": step,
            "total_steps": layout.total_steps,
            "steps_this_invocation": step - start_step,
            "tokens": tokens_seen,
            "final_loss": final_loss,  # mean loss of the last logged window
            "elapsed_s": round(elapsed, 2),
            "world_size": info.world_size,
            "parameters": n_params,
            "batch": {"sequences": layout.sequences, "per_rank": layout.per_rank, "micro_batch": layout.micro_batch,
                      "accumulation": layout.accumulation,
                      "seq_len": cfg.data.seq_len},
            "sources": {
                name: {"weight": w, "realised_share": sh, "tokens": t, "documents": d, "passes_completed": p,
                       "skipped": data_summary["skipped"][name]}
                for name, w, sh, t, d, p in zip(data_summary["sources"], weights, shares, data_summary["tokens"],
                                                data_summary["documents"], data_summary["passes_completed"])
            },
            "memory_per_rank": memory,
            "final_model": str(out / "final") if completed else None,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        if (out / "metrics.jsonl").is_file():
            plot_training_curves(out / "metrics.jsonl", out / "curves.png",
                                 title=f"pretrain: {Path(cfg.output_dir).name} ({tokens_seen:,} tokens)")
    barrier()
    return broadcast_object(summary)


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_job_args(PretrainConfig, argv, __doc__)
    return run(cfg)


if __name__ == "__main__":
    main()
