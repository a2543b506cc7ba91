"""Sampling G outputs per question from the policy.

``HFSampler`` uses ``transformers``' ``generate`` with the KV cache, batching several prompts
per call (``num_return_sequences=G``), in eval mode and without gradients. Output tokens after
the first EOS are masked out. ``VLLMSampler`` is an optional backend for GPUs with vLLM
installed: it pushes the policy's current weights into an in-process vLLM engine before each
sampling stage. It is not exercised by the CPU tests (no vLLM there); the HF sampler is the
reference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from training.rl.data import Question
from training.rl.rollout import Rollout, completion_mask_after_eos, left_pad, right_pad


@dataclass(frozen=True)
class SamplingSettings:
    """How outputs are sampled (paper: max length 1024; temperature/top-p are not given, 1.0 here)."""

    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    prompts_per_call: int = 8


def _eos_ids(tokenizer, model) -> list[int]:
    ids = {tokenizer.eos_token_id}
    cfg_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(cfg_eos, int):
        ids.add(cfg_eos)
    elif isinstance(cfg_eos, (list, tuple)):
        ids.update(cfg_eos)
    return sorted(i for i in ids if i is not None)


class HFSampler:
    """Batched sampling with ``model.generate`` (KV cache on)."""

    name = "hf"

    def __init__(self, tokenizer, settings: SamplingSettings) -> None:
        self.tokenizer = tokenizer
        self.settings = settings
        self.last_seconds = 0.0

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        return [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]

    @torch.no_grad()
    def sample(
        self, model, prompts: Sequence[str], questions: Sequence[Question | None], group_size: int, greedy: bool = False
    ) -> Rollout:
        """G = ``group_size`` completions for each prompt; rows ``i*G .. i*G+G-1`` answer prompt i.

        ``greedy`` decodes deterministically (for evaluation; use ``group_size=1``).
        """
        start = time.perf_counter()
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        s = self.settings
        eos = _eos_ids(self.tokenizer, model)
        pad = self.tokenizer.pad_token_id
        encoded = self.encode_prompts(prompts)
        prompt_rows: list[list[int]] = []
        completion_rows: list[list[int]] = []
        try:
            for lo in range(0, len(encoded), s.prompts_per_call):
                chunk = encoded[lo : lo + s.prompts_per_call]
                ids, mask = left_pad(chunk, pad)
                sampling = (
                    {"do_sample": False}
                    if greedy
                    else {"do_sample": True, "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k or None}
                )
                out = model.generate(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    **sampling,
                    max_new_tokens=s.max_new_tokens,
                    num_return_sequences=group_size,
                    pad_token_id=pad,
                    eos_token_id=eos,
                    use_cache=True,
                )
                completions = out[:, ids.shape[1] :].cpu()
                cmask = completion_mask_after_eos(completions, eos)
                for j in range(completions.shape[0]):
                    prompt_rows.append(chunk[j // group_size])
                    completion_rows.append(completions[j][cmask[j].bool()].tolist())
        finally:
            model.train(was_training)
        rollout = self._to_rollout(prompt_rows, completion_rows, questions, group_size)
        self.last_seconds = time.perf_counter() - start
        return rollout

    def _to_rollout(self, prompt_rows, completion_rows, questions, group_size) -> Rollout:
        pad = self.tokenizer.pad_token_id
        p_ids, p_mask = left_pad(prompt_rows, pad)
        c_ids, c_mask = right_pad(completion_rows, pad)
        texts = self.tokenizer.batch_decode([row for row in completion_rows], skip_special_tokens=True)
        group = torch.arange(len(completion_rows)) // group_size
        return Rollout(
            prompt_ids=p_ids,
            prompt_mask=p_mask,
            completion_ids=c_ids,
            completion_mask=c_mask,
            group=group,
            texts=texts,
            questions=[questions[i // group_size] for i in range(len(completion_rows))],
        )


class VLLMSampler(HFSampler):
    """Sampling with vLLM (GPU only, optional). The policy's weights are loaded into the engine before
    each call, so samples always come from the current policy.

    Departure: untested in CI (vLLM needs a GPU); its weight-sync call follows vLLM's
    ``LLM.llm_engine.model_executor.driver_worker.model_runner.model.load_weights`` API, which
    changes between vLLM versions.
    """

    name = "vllm"

    def __init__(self, tokenizer, settings: SamplingSettings, model_path: str, gpu_memory_utilization: float = 0.3):
        super().__init__(tokenizer, settings)
        try:
            from vllm import LLM
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise RuntimeError("sampling.backend=vllm needs vLLM installed (pip install vllm) and a GPU") from exc
        self._llm = LLM(model=model_path, gpu_memory_utilization=gpu_memory_utilization, enable_prefix_caching=True)

    @torch.no_grad()
    def sample(self, model, prompts, questions, group_size, greedy=False):  # pragma: no cover - needs a GPU with vLLM
        from vllm import SamplingParams

        start = time.perf_counter()
        runner = self._llm.llm_engine.model_executor.driver_worker.model_runner
        runner.model.load_weights(model.state_dict().items())
        s = self.settings
        params = SamplingParams(
            n=group_size,
            temperature=0.0 if greedy else s.temperature,
            top_p=s.top_p,
            top_k=s.top_k or -1,
            max_tokens=s.max_new_tokens,
        )
        encoded = self.encode_prompts(prompts)
        outputs = self._llm.generate([{"prompt_token_ids": p} for p in encoded], params, use_tqdm=False)
        prompt_rows, completion_rows = [], []
        for p, out in zip(encoded, outputs):
            for comp in out.outputs:
                prompt_rows.append(p)
                completion_rows.append(list(comp.token_ids))
        rollout = self._to_rollout(prompt_rows, completion_rows, questions, group_size)
        self.last_seconds = time.perf_counter() - start
        return rollout
