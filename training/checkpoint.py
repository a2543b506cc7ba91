"""Checkpoints that resume a training run exactly, written atomically.

A checkpoint is a folder ``<output_dir>/checkpoints/step-NNNNNNNN/`` holding

- the model as a normal Hugging Face folder (``config.json``, safetensors weights, tokenizer), so
  any checkpoint can also be used directly as ``--init-from`` or for evaluation;
- ``trainer_state.pt``: the optimiser state (keyed by parameter name), the LR scheduler, the step,
  the data position of every data stream, every rank's RNG states (Python, NumPy, torch CPU and
  CUDA) and the run's counters.

It is written into a temporary folder that is renamed into place only when complete, and the
``latest`` file is then replaced atomically, so a crash while writing never leaves a checkpoint
that looks valid but is not. Older checkpoints beyond ``keep_last`` are deleted afterwards.

Model and optimiser states are gathered as full (unsharded) tensors on CPU with
``torch.distributed.checkpoint.state_dict``, which works the same for a plain module, DDP and
FSDP2; rank 0 writes. For very large FSDP models this needs the full state in rank 0's CPU
memory (sharded distributed checkpoints are not implemented).
"""
from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from training.distributed import DistInfo, all_gather_objects, barrier, unwrap

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.pt"
LATEST_FILE = "latest"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def rng_state() -> dict:
    """This process's random-number-generator states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``output_dir`` as ``(step, folder)``, oldest first."""
    root = Path(output_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _NAME.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (the one ``latest`` names, else the highest step), or None."""
    root = Path(output_dir) / CHECKPOINT_DIR
    pointer = root / LATEST_FILE
    if pointer.is_file():
        candidate = root / pointer.read_text(encoding="utf-8").strip()
        if (candidate / STATE_FILE).is_file():
            return candidate
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def save_checkpoint(output_dir: str | Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, tokenizer, info: DistInfo, trainer_state: dict, keep_last: int = 2) -> Path | None:
    """Write the checkpoint of ``step`` (call on every rank: gathering states is collective).

    ``trainer_state`` holds the run's own state (data position, counters); this adds the model,
    optimiser, scheduler and RNG states. Returns the folder on rank 0, None elsewhere.
    """
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state = get_model_state_dict(model, options=options)
    optim_state = get_optimizer_state_dict(model, optimizer, options=options)
    rng_states = all_gather_objects(rng_state())
    final = None
    if info.is_main:
        root = Path(output_dir) / CHECKPOINT_DIR
        root.mkdir(parents=True, exist_ok=True)
        final = root / checkpoint_name(step)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{checkpoint_name(step)}-"))
        try:
            unwrap(model).save_pretrained(str(tmp), state_dict=model_state, safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(str(tmp))
            torch.save(
                {
                    "step": step,
                    "optimizer": optim_state,
                    "scheduler": scheduler.state_dict(),
                    "rng": rng_states,
                    "world_size": info.world_size,
                    **trainer_state,
                },
                tmp / STATE_FILE,
            )
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _write_text_atomic(root / LATEST_FILE, final.name + "\n")
        if keep_last > 0:
            for _, old in list_checkpoints(output_dir)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def load_trainer_state(checkpoint: str | Path) -> dict:
    """The ``trainer_state.pt`` of a checkpoint (our own file: NumPy RNG states need full unpickling)."""
    return torch.load(Path(checkpoint) / STATE_FILE, map_location="cpu", weights_only=False)


def restore_training_state(state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                           info: DistInfo) -> None:
    """Load optimiser, scheduler and this rank's RNG states (the model weights come from the folder itself)."""
    set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True))
    scheduler.load_state_dict(state["scheduler"])
    rngs = state["rng"]
    set_rng_state(rngs[info.rank] if info.rank < len(rngs) else rngs[0])
