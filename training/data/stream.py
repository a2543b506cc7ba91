"""One data stream: weighted sources -> tokenised documents -> packed fixed-length sequences.

A stream owns one ``DocumentReader`` per source (its share of every source, see
``training.data.readers``), tokenises documents in small batches with a Hugging Face tokenizer,
appends EOS, mixes sources by tokens (``training.data.mixture``) and packs the result
(``training.data.packing``). Its whole position is ``state_dict()``: the readers' positions, the
tokenised-but-unused documents and the packer's pending tokens, so a resumed stream emits
exactly the sequences the uninterrupted one would have.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.data.mixture import normalise_weights, pick_source
from training.data.packing import PackedSequence, SequencePacker
from training.data.readers import DocumentReader


@dataclass(frozen=True)
class StreamSource:
    """One resolved source: a name, its sorted files, the text field, format and mixture weight."""

    name: str
    files: tuple[str, ...]
    weight: float
    text_field: str = "text"
    format: str = "auto"
    split: str = "auto"


class TextTokenizer:
    """Batch tokenisation to token-id arrays, without special tokens, with EOS appended."""

    def __init__(self, tokenizer, add_bos: bool = False):
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token; documents cannot be separated")
        self.tokenizer = tokenizer
        self.eos_id = int(tokenizer.eos_token_id)
        self.bos_id = tokenizer.bos_token_id if add_bos else None
        if add_bos and self.bos_id is None:
            raise ValueError("add_bos is set but the tokenizer has no BOS token")
        # The Rust tokenizer behind a fast HF tokenizer encodes a batch without Python overhead per text.
        self._backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None

    def __call__(self, texts: Sequence[str]) -> list[np.ndarray]:
        if self._backend is not None:
            ids = [e.ids for e in self._backend.encode_batch(list(texts), add_special_tokens=False)]
        else:
            ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        prefix = [self.bos_id] if self.bos_id is not None else []
        return [np.asarray(prefix + list(x) + [self.eos_id], dtype=np.int64) for x in ids]


class DataStream:
    """Endless packed sequences from weighted sources, for data stream ``stream`` of ``num_streams``."""

    def __init__(self, sources: Sequence[StreamSource], tokenize: TextTokenizer, seq_len: int, stream: int = 0,
                 num_streams: int = 1, seed: int = 0, shuffle_rows: bool = True, block_lines: int = 1024,
                 tokenize_batch: int = 32):
        self.sources = list(sources)
        self.weights = normalise_weights([s.weight for s in self.sources])
        self.tokenize = tokenize
        self.stream = stream
        self.tokenize_batch = max(1, tokenize_batch)
        self.readers = [
            DocumentReader(s.name, s.files, s.text_field, s.format, stream, num_streams, seed, shuffle_rows,
                           block_lines, s.split)
            for s in self.sources
        ]
        self.packer = SequencePacker(seq_len)
        self._queues: list[deque[np.ndarray]] = [deque() for _ in self.sources]
        self.tokens_taken = [0] * len(self.sources)  # tokens handed to the packer, per source
        self.tokens_emitted = [0] * len(self.sources)  # tokens in emitted sequences, per source
        self.documents_used = [0] * len(self.sources)

    def _next_document(self, i: int) -> np.ndarray:
        queue = self._queues[i]
        if not queue:
            texts = [self.readers[i].next_text() for _ in range(self.tokenize_batch)]
            queue.extend(self.tokenize(texts))
        return queue.popleft()

    def next_sequence(self) -> PackedSequence:
        """The next ``seq_len``-token sequence."""
        while not self.packer.ready():
            i = pick_source(self.tokens_taken, self.weights)
            doc = self._next_document(i)
            self.packer.add(i, doc)
            self.tokens_taken[i] += int(doc.size)
            self.documents_used[i] += 1
        seq = self.packer.pop()
        for i, n in seq.source_tokens.items():
            self.tokens_emitted[i] += n
        return seq

    def skipped(self) -> dict[str, dict[str, int]]:
        """Skipped rows by source and reason."""
        return {r.name: dict(r.skipped) for r in self.readers}

    def state_dict(self) -> dict:
        return {
            "stream": self.stream,
            "sources": [s.name for s in self.sources],
            "readers": [r.state_dict() for r in self.readers],
            "queues": [[d.tolist() for d in q] for q in self._queues],
            "packer": self.packer.state_dict(),
            "tokens_taken": list(self.tokens_taken),
            "tokens_emitted": list(self.tokens_emitted),
            "documents_used": list(self.documents_used),
        }

    def load_state_dict(self, state: dict) -> None:
        names = [s.name for s in self.sources]
        if state["stream"] != self.stream or state["sources"] != names:
            raise ValueError(
                f"data state of stream {state['stream']} with sources {state['sources']} does not fit stream "
                f"{self.stream} with sources {names}"
            )
        for reader, reader_state in zip(self.readers, state["readers"]):
            reader.load_state_dict(reader_state)
        self._queues = [deque(np.asarray(d, dtype=np.int64) for d in q) for q in state["queues"]]
        self.packer.load_state_dict(state["packer"])
        self.tokens_taken = list(state["tokens_taken"])
        self.tokens_emitted = list(state["tokens_emitted"])
        self.documents_used = list(state["documents_used"])
