"""Model and tokenizer loading shared by every training job, all offline.

- ``load_model`` takes a local checkpoint folder (any ``AutoModelForCausalLM``) or a model
  config (a dict such as ``{"model_type": "llama", "hidden_size": 64, ...}``, or a path to a
  ``config.json``/YAML file) for a from-scratch model. It never touches the network
  (``local_files_only=True``).
- ``train_bpe_tokenizer`` trains a byte-level BPE tokenizer on local text, so tests and the
  tiny configs need no downloaded tokenizer. It has ``eos``/``pad`` tokens and a plain chat
  template, and saves as a normal Hugging Face tokenizer folder.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import yaml

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|begin|>"
SPECIAL_TOKENS = [EOS_TOKEN, PAD_TOKEN, BOS_TOKEN]

# A minimal chat template: "User: ...\n\nAssistant: ..." (the DeepSeekMath-Instruct layout).
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}User: {{ message['content'] }}\n\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] }}{{ eos_token }}"
    "{% else %}{{ message['content'] }}\n\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 1024, save_dir: str | Path | None = None,
                        min_frequency: int = 2):
    """Train a byte-level BPE tokenizer on ``texts``; return a ``PreTrainedTokenizerFast``.

    Every byte is in the base alphabet, so any input text can be encoded. Saved to ``save_dir``
    when given (loadable with ``load_tokenizer``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, bos_token=BOS_TOKEN
    )
    fast.chat_template = PLAIN_CHAT_TEMPLATE
    if save_dir is not None:
        fast.save_pretrained(str(save_dir))
    return fast


def load_tokenizer(path: str | Path):
    """A Hugging Face tokenizer from a local folder; guarantees ``pad_token`` is set (to EOS if absent)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_llama_config(vocab_size: int, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                      intermediate_size: int | None = None, max_position_embeddings: int = 1024, **extra: Any) -> dict:
    """A config dict for a tiny Llama-style model (for tests and the tiny configs)."""
    return {
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size or 4 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_heads,
        "max_position_embeddings": max_position_embeddings,
        "tie_word_embeddings": True,
        **extra,
    }


def _read_config_file(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh) if path.suffix == ".json" else yaml.safe_load(fh)


def build_config(spec: dict):
    """A ``PretrainedConfig`` from a dict holding ``model_type`` and its fields."""
    from transformers import AutoConfig

    spec = dict(spec)
    model_type = spec.pop("model_type")
    return AutoConfig.for_model(model_type, **spec)


def load_model(source: str | Path | dict, tokenizer=None, dtype: torch.dtype | None = None, seed: int | None = None,
               attn_implementation: str | None = None):
    """An ``AutoModelForCausalLM`` from a checkpoint folder, or built from a config (dict or file).

    For a from-scratch model, the tokenizer's special-token ids are written into the config and
    the vocabulary is sized to the tokenizer when one is given. Weights of a from-scratch model
    depend only on ``seed`` (when given). ``attn_implementation`` (e.g. ``"sdpa"``,
    ``"flash_attention_2"``) is passed to Hugging Face when given.
    """
    from transformers import AutoModelForCausalLM

    if isinstance(source, (str, Path)) and Path(source).is_dir():
        extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
        return AutoModelForCausalLM.from_pretrained(str(source), local_files_only=True, dtype=dtype, **extra)
    spec = _read_config_file(Path(source)) if isinstance(source, (str, Path)) else dict(source)
    if tokenizer is not None:
        spec.setdefault("vocab_size", len(tokenizer))
        spec["vocab_size"] = max(spec["vocab_size"], len(tokenizer))
        for name in ("eos_token_id", "pad_token_id", "bos_token_id"):
            value = getattr(tokenizer, name, None)
            if value is not None:
                spec[name] = value
    config = build_config(spec)
    if seed is not None:
        torch.manual_seed(seed)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = AutoModelForCausalLM.from_config(config, **extra)
    if dtype is not None:
        model = model.to(dtype)
    return model


def save_model(model, tokenizer, directory: str | Path) -> None:
    """Save model and tokenizer as a normal Hugging Face folder (safetensors)."""
    os.makedirs(directory, exist_ok=True)
    model.save_pretrained(str(directory), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
