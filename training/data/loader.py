"""The pre-training data of one rank: configuration, source resolution, step batches, prefetching.

The global batch of every optimiser step holds ``batch_sequences`` packed sequences, taken in
equal parts from ``num_streams`` data streams (``training.data.stream``); rank ``r`` of ``W``
owns the streams ``s`` with ``s % W == r`` and reads only their share of the files. With a fixed
``num_streams`` the global batch of every step is the same for any number of ranks that divides
it, so a run can be resumed on a different number of GPUs, and one process reproduces a DDP run.

``RankBatches.state_dict()`` is the position of the rank's streams after the last batch;
``load_state_dict`` accepts the merged state of all ranks (as a checkpoint holds it) and picks its
own streams. ``Prefetcher`` prepares batches in a background thread (tokenisation in the Rust
tokenizer releases the GIL) and hands each one out with the stream state taken right after it,
so a checkpoint always matches the batches actually trained on.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from training.data.files import list_source_files, resolve_local
from training.data.packing import document_targets_mask
from training.data.stream import DataStream, StreamSource, TextTokenizer

log = logging.getLogger(__name__)


@dataclass
class SourceConfig:
    """One weighted source: Parquet or JSONL(.gz) files (local, gs://, s3://) holding a text field."""

    name: str = ""
    path: str = ""  # glob, file or folder
    weight: float = 1.0  # share of the training tokens (weights are normalised to sum to 1)
    text_field: str = "text"
    format: str = "auto"  # auto (from the file name), parquet or jsonl
    optional: bool = False  # when nothing matches `path`: leave the source out (with a warning) instead of failing
    split: str = "auto"  # how streams share it: chunks (row groups / blocks), rows, auto (rows if it is small)

    def __post_init__(self):
        if not self.path:
            raise ValueError("every data source needs a path")
        if not self.name:
            self.name = self.path
        if self.weight <= 0:
            raise ValueError(f"source {self.name}: weight must be > 0, got {self.weight}")


@dataclass
class DataConfig:
    """How documents become training sequences."""

    sources: list[SourceConfig] = field(default_factory=list)
    seq_len: int = 4096  # the paper's 4K context
    seed: int = 0  # data order (file order and row order within each chunk)
    num_streams: int = 0  # data streams (0: one per rank); a multiple of the number of ranks
    doc_masking: bool = False  # attend within a document only (position ids restart at each document)
    add_bos: bool = False  # put the tokenizer's BOS before each document (EOS always follows it)
    shuffle_rows: bool = True  # shuffle rows within each row group / block
    block_lines: int = 1024  # JSONL lines per chunk
    tokenize_batch: int = 32  # documents tokenised together
    prefetch: int = 2  # step batches prepared ahead in a background thread (0: none)

    def __post_init__(self):
        if self.seq_len < 2:
            raise ValueError("data.seq_len must be >= 2")
        if self.num_streams < 0 or self.prefetch < 0 or self.block_lines < 1:
            raise ValueError("data.num_streams and data.prefetch must be >= 0, data.block_lines >= 1")


def resolve_sources(configs: list[SourceConfig], base: str | None = None) -> list[StreamSource]:
    """The sources with their sorted files; optional sources without files are left out with a warning."""
    if not configs:
        raise ValueError("no data sources configured (data.sources)")
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"data source names must be unique, got {names}")
    resolved = []
    for c in configs:
        files = list_source_files(resolve_local(c.path, base))
        if not files:
            if c.optional:
                log.warning("optional data source %s: nothing matches %s; left out", c.name, c.path)
                continue
            raise FileNotFoundError(f"data source {c.name!r}: no file matches {c.path!r}")
        resolved.append(StreamSource(c.name, tuple(files), c.weight, c.text_field, c.format, c.split))
    if not resolved:
        raise FileNotFoundError(f"none of the data sources has files: {[c.path for c in configs]}")
    return resolved


@dataclass
class Batch:
    """The sequences of one optimiser step on one rank."""

    input_ids: torch.Tensor  # (n, seq_len) int64
    position_ids: torch.Tensor | None  # (n, seq_len), only with document masking
    target_mask: torch.Tensor | None  # (n, seq_len - 1) bool: which next-token targets count


class RankBatches:
    """Step batches for one rank: ``seqs_per_stream`` sequences from each of its streams."""

    def __init__(self, sources: list[StreamSource], tokenizer, cfg: DataConfig, batch_sequences: int,
                 rank: int = 0, world_size: int = 1):
        self.num_streams = cfg.num_streams or world_size
        if self.num_streams % world_size:
            raise ValueError(f"data.num_streams ({self.num_streams}) must be a multiple of the number of ranks "
                             f"({world_size})")
        if batch_sequences % self.num_streams:
            raise ValueError(f"the batch of {batch_sequences} sequences cannot be split evenly over "
                             f"{self.num_streams} data streams")
        self.cfg = cfg
        self.sources = sources
        self.seqs_per_stream = batch_sequences // self.num_streams
        self.stream_ids = [s for s in range(self.num_streams) if s % world_size == rank]
        tokenize = TextTokenizer(tokenizer, cfg.add_bos)
        self.streams = {
            s: DataStream(sources, tokenize, cfg.seq_len, s, self.num_streams, cfg.seed, cfg.shuffle_rows,
                          cfg.block_lines, cfg.tokenize_batch)
            for s in self.stream_ids
        }

    def next_batch(self) -> Batch:
        seqs = [self.streams[s].next_sequence() for s in self.stream_ids for _ in range(self.seqs_per_stream)]
        ids = torch.from_numpy(np.stack([q.input_ids for q in seqs]))
        if not self.cfg.doc_masking:
            return Batch(ids, None, None)
        positions = np.stack([q.position_ids for q in seqs])
        return Batch(ids, torch.from_numpy(positions), torch.from_numpy(document_targets_mask(positions)))

    def state_dict(self) -> dict:
        return {
            "num_streams": self.num_streams,
            "seq_len": self.cfg.seq_len,
            "seed": self.cfg.seed,
            "sources": [s.name for s in self.sources],
            "streams": {s: self.streams[s].state_dict() for s in self.stream_ids},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from a (possibly all-ranks merged) state; checks it was made with the same layout."""
        mine = (self.num_streams, self.cfg.seq_len, self.cfg.seed, [s.name for s in self.sources])
        theirs = (state["num_streams"], state["seq_len"], state["seed"], state["sources"])
        if mine != theirs:
            raise ValueError(f"the checkpoint's data layout (num_streams, seq_len, seed, sources) = {theirs} differs "
                             f"from this run's {mine}; resume with the same data settings")
        for s in self.stream_ids:
            self.streams[s].load_state_dict(state["streams"][s])


def merge_data_states(states: list[dict]) -> dict:
    """One state holding every rank's streams (from ``all_gather_object`` of ``state_dict()``)."""
    merged = dict(states[0])
    merged["streams"] = {}
    for st in states:
        merged["streams"].update(st["streams"])
    return merged


def summarise_streams(state: dict) -> dict:
    """Per-source tokens, documents, skipped rows and passes over all streams in ``state``."""
    names = state["sources"]
    tokens = [0] * len(names)
    docs = [0] * len(names)
    epochs = [0] * len(names)
    skipped: dict[str, dict[str, int]] = {n: {} for n in names}
    for st in state["streams"].values():
        for i, name in enumerate(names):
            tokens[i] += st["tokens_emitted"][i]
            docs[i] += st["documents_used"][i]
            epochs[i] = max(epochs[i], st["readers"][i]["epoch"])
            for reason, n in st["readers"][i]["skipped"].items():
                skipped[name][reason] = skipped[name].get(reason, 0) + n
    return {"sources": names, "tokens": tokens, "documents": docs, "passes_completed": epochs, "skipped": skipped}


class Prefetcher:
    """Yields ``(batch, state_after_batch)`` from ``RankBatches``, prepared up to ``depth`` ahead."""

    _DONE = object()

    def __init__(self, batches: RankBatches, depth: int = 2):
        self.batches = batches
        self.depth = depth
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = None
        if depth > 0:
            self._thread = threading.Thread(target=self._work, name="pretrain-data", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                item = (self.batches.next_batch(), self.batches.state_dict())
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - handed to the training loop, which re-raises it
            self._queue.put(exc)

    def next(self) -> tuple[Batch, dict]:
        if self._thread is None:
            return self.batches.next_batch(), self.batches.state_dict()
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get(timeout=0.1)
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.1)
