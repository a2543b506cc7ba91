"""Packing tokenised documents into fixed-length training sequences.

Documents are concatenated, each followed by the EOS token, and the stream is cut into
sequences of exactly ``seq_len`` tokens; a document longer than the room left continues at the
start of the next sequence. Nothing is padded, truncated or repeated: the concatenation of the
emitted sequences is exactly the concatenation of the documents (each with its EOS), which
``pack_documents`` makes checkable.

Every sequence also carries ``position_ids`` that restart at 0 at each document piece. Passed to
a Hugging Face model without an attention mask, they make it attend only within a document
(per-document attention masking: block-diagonal causal attention with SDPA/eager, variable
length kernels with FlashAttention); ``document_targets_mask`` then also stops the model from
being trained to predict a document's first token from the previous document. Without masking,
position ids are simply ``0..seq_len-1`` (the usual concatenate-and-chunk pre-training, as in
the paper's Megatron-style setup).

Per-source token counts are kept for every emitted token, so the realised mixture of a run can
be compared with the configured weights.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PackedSequence:
    """One training sequence: token ids, position ids, and how many tokens came from each source."""

    input_ids: np.ndarray  # int64, (seq_len,)
    position_ids: np.ndarray  # int64, (seq_len,): restarts at 0 at each document piece
    source_tokens: dict[int, int]  # source index -> tokens of this sequence


def document_targets_mask(position_ids: np.ndarray) -> np.ndarray:
    """For next-token targets ``input_ids[..., 1:]``: False where the target starts a new document.

    Used with per-document masking, where predicting a document's first token from another
    document's context is meaningless.
    """
    return position_ids[..., 1:] != 0


class SequencePacker:
    """Accumulates documents (token arrays, EOS already appended) and cuts ``seq_len``-token sequences."""

    def __init__(self, seq_len: int):
        if seq_len < 2:
            raise ValueError("seq_len must be >= 2")
        self.seq_len = seq_len
        # Pending pieces: (source index, tokens, starts_document).
        self._pieces: deque[tuple[int, np.ndarray, bool]] = deque()
        self._buffered = 0

    @property
    def buffered_tokens(self) -> int:
        return self._buffered

    def add(self, source: int, tokens: np.ndarray | Sequence[int]) -> None:
        """Queue one document (its tokens including the trailing EOS)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.size == 0:
            return
        self._pieces.append((source, tokens, True))
        self._buffered += int(tokens.size)

    def ready(self) -> bool:
        """Whether a full sequence can be cut."""
        return self._buffered >= self.seq_len

    def pop(self, allow_partial: bool = False) -> PackedSequence:
        """Cut the next sequence (``allow_partial``: the last, shorter one when the input has ended)."""
        if not self.ready() and not (allow_partial and self._buffered > 0):
            raise ValueError("not enough tokens buffered for a sequence")
        want = min(self.seq_len, self._buffered)
        ids, positions, counts = [], [], {}
        while want > 0:
            source, tokens, _ = self._pieces[0]
            take = min(want, int(tokens.size))
            ids.append(tokens[:take])
            positions.append(np.arange(take, dtype=np.int64))
            counts[source] = counts.get(source, 0) + take
            if take == tokens.size:
                self._pieces.popleft()
            else:
                self._pieces[0] = (source, tokens[take:], False)
            want -= take
            self._buffered -= take
        return PackedSequence(np.concatenate(ids), np.concatenate(positions), counts)

    def state_dict(self) -> dict:
        """The pending pieces as plain lists (safe for ``torch.load(weights_only=True)``)."""
        return {"pieces": [(s, t.tolist(), start) for s, t, start in self._pieces]}

    def load_state_dict(self, state: dict) -> None:
        self._pieces = deque((int(s), np.asarray(t, dtype=np.int64), bool(start)) for s, t, start in state["pieces"])
        self._buffered = sum(int(t.size) for _, t, _ in self._pieces)


def pack_documents(documents: Iterable[Sequence[int]], seq_len: int, eos_id: int,
                   keep_last_partial: bool = False) -> Iterator[PackedSequence]:
    """Pack token lists (without EOS) into sequences; the final partial one only if asked."""
    packer = SequencePacker(seq_len)
    for doc in documents:
        packer.add(0, list(doc) + [eos_id])
        while packer.ready():
            yield packer.pop()
    if keep_last_partial and packer.buffered_tokens:
        yield packer.pop(allow_partial=True)
