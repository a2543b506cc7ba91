"""Write the final corpus: ``text`` plus provenance and ``num_tokens``, as streaming-friendly shards.

``python -m pipeline.corpus --input DIR_OR_GLOB --output DIR [--tokenizer PATH] [--num_shards N]
[--row_group_mb 32] [Beam options]``

Output layout (``DIR``):
- ``data/corpus-SSSSS-of-NNNNN.parquet``: zstd Parquet with ``CORPUS_SCHEMA``; names depend only
  on ``--num_shards``, and the bytes only on the input rows (a page's shard is a hash of its id,
  each shard is sorted by id: the same pages give byte-identical shards on every runner); row groups of about ``--row_group_mb`` MB so readers can stream them.
- ``manifest.json``: every shard with rows, tokens, bytes and sha256; totals; the tokenizer.
- ``README.md``: a dataset card (the orchestrator ``pipeline.run`` rewrites it with the counts of
  every stage); its YAML header lets ``datasets.load_dataset(DIR)`` find the shards.
- ``summary.json`` and, last, ``_SUCCESS``.

Columns missing from the input (e.g. ``recall_round`` when the corpus is built straight from
extracted pages) are written as nulls; columns the schema does not name are dropped.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import math
import time
from collections.abc import Sequence

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.utils import shared

from pipeline import beam_utils
from pipeline.corpus.card import write_card
from pipeline.inputs import check_output_reachable, require_file, require_pages
from pipeline.schema import DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, NUM_TOKENS, RECALL_ROUND, schema_with
from pipeline.tokens import TokenCounter

CORPUS_SCHEMA = schema_with(DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, RECALL_ROUND, NUM_TOKENS)
NAMESPACE = "corpus"
TARGET_SHARD_BYTES = 256 * 1024 * 1024  # auto sharding: about this much input per output shard
log = logging.getLogger(__name__)


class _Counters:
    """Holder so one TokenCounter (possibly a big tokenizer) is shared by all threads of a worker."""

    def __init__(self, counter: TokenCounter):
        self.counter = counter


class AddTokenCounts(beam.DoFn):
    """Adds ``num_tokens`` to each row of a batch; the tokenizer loads once per worker process."""

    _shared = shared.Shared()

    def __init__(self, tokenizer_path: str | None):
        self.tokenizer_path = tokenizer_path

    def setup(self):
        path = self.tokenizer_path
        self._counter = self._shared.acquire(lambda: _Counters(TokenCounter(path)), tag=f"tokens:{path}").counter

    def process(self, batch: list[dict]):
        counts = self._counter.count([r.get("text") for r in batch])
        beam.metrics.Metrics.counter(NAMESPACE, "rows").inc(len(batch))
        beam.metrics.Metrics.counter(NAMESPACE, "tokens").inc(sum(counts))
        for row, n in zip(batch, counts):
            yield {**row, "num_tokens": n}


class WriteCorpus(beam.PTransform):
    """Rows -> token counts -> ``data/corpus-*.parquet`` shards."""

    def __init__(self, output_dir: str, tokenizer_path: str | None, num_shards: int, row_group_mb: int):
        super().__init__()
        self.output_dir = output_dir
        self.tokenizer_path = tokenizer_path
        self.num_shards = num_shards
        self.row_group_mb = row_group_mb

    def expand(self, rows):
        return (
            rows
            | "Batch" >> beam.BatchElements(min_batch_size=8, max_batch_size=512)
            | "CountTokens" >> beam.ParDo(AddTokenCounts(self.tokenizer_path))
            | "WriteShards" >> beam_utils.WriteSortedParquetShards(
                beam_utils.join(self.output_dir, "data"), CORPUS_SCHEMA, num_shards=self.num_shards,
                prefix="corpus", sort_key="id", row_group_bytes=self.row_group_mb * 1024 * 1024)
        )


def parse_args(argv: Sequence[str] | None):
    parser = argparse.ArgumentParser(prog="python -m pipeline.corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="stage output folder or Parquet glob")
    parser.add_argument("--output", required=True)
    parser.add_argument("--tokenizer", default=None, help="local Hugging Face tokenizer folder (default: words + CJK chars)")
    parser.add_argument("--num_shards", type=int, default=0, help="output shards; 0 = one per ~256 MB of input")
    parser.add_argument("--row_group_mb", type=int, default=32, help="target Parquet row-group size for streaming")
    parser.add_argument("--lineage", default=None,
                        help="JSON with the earlier stages' summaries, parameters and sources, for the dataset card "
                             "(pipeline.run writes it)")
    return parser.parse_known_args(argv)


def auto_num_shards(pattern: str) -> int:
    """One shard per ~256 MB of input Parquet (at least 1), from file sizes alone (no data read)."""
    try:
        metadata = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # noqa: BLE001 - no match is handled as an empty input
        metadata = []
    total = sum(m.size_in_bytes for m in metadata)
    return max(1, math.ceil(total / TARGET_SHARD_BYTES))


def file_sha256(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with FileSystems.open(path) as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def build_manifest(output_dir: str, tokenizer_name: str) -> dict:
    """Manifest of the written shards: rows and tokens from Parquet footers/columns, sha256 of bytes."""
    shards = []
    paths = sorted(m.path for m in FileSystems.match([beam_utils.join(output_dir, "data", "corpus-*.parquet")])[0].metadata_list)
    for path in paths:
        with FileSystems.open(path) as fh:
            pf = pq.ParquetFile(fh)
            rows = pf.metadata.num_rows
            tokens = 0
            for i in range(pf.num_row_groups):
                column = pf.read_row_group(i, columns=["num_tokens"]).column(0)
                tokens += int(sum(v for v in column.to_pylist() if v is not None))
            row_groups = pf.num_row_groups
        sha, size = file_sha256(path)
        rel = path[len(output_dir):].lstrip("/")
        shards.append({"path": rel, "rows": rows, "tokens": tokens, "bytes": size, "row_groups": row_groups, "sha256": sha})
    return {
        "format": "parquet",
        "schema": [{"name": f.name, "type": str(f.type)} for f in CORPUS_SCHEMA],
        "tokenizer": tokenizer_name,
        "num_shards": len(shards),
        "rows": sum(s["rows"] for s in shards),
        "tokens": sum(s["tokens"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "shards": shards,
    }


def run(argv: Sequence[str] | None = None) -> dict:
    """Build the corpus shards, then the manifest, card and summary; mark the folder complete last."""
    args, beam_args = parse_args(argv)
    options = beam_utils.pipeline_options(beam_args)
    dry_run = beam_utils.is_dry_run(options)
    check_output_reachable(args.output, options)
    pattern = beam_utils.parquet_glob(args.input) if dry_run else require_pages(args.input)
    if args.lineage and not dry_run:
        require_file(args.lineage, "--lineage", "give the lineage.json pipeline.run writes, or leave --lineage out")
    num_shards = args.num_shards or (1 if dry_run else auto_num_shards(pattern))
    if not dry_run:
        beam_utils.clear_output(args.output)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    (
        pipeline
        | "ReadRows" >> beam.io.ReadFromParquet(pattern, validate=not dry_run)
        | "WriteCorpus" >> WriteCorpus(args.output, args.tokenizer, num_shards, args.row_group_mb)
    )
    result = beam_utils.run_pipeline(pipeline)
    if dry_run:
        return {"stage": "corpus", "dry_run": True}
    manifest = build_manifest(args.output, TokenCounter(args.tokenizer).name if args.tokenizer else "approx:words+cjk-chars")
    beam_utils.write_json(beam_utils.join(args.output, "manifest.json"), manifest)
    summary = {
        "stage": "corpus",
        "input": args.input,
        "rows_in": manifest["rows"],
        "rows": manifest["rows"],
        "tokens": manifest["tokens"],
        "num_shards": manifest["num_shards"],
        "tokenizer": manifest["tokenizer"],
        "counters": beam_utils.counters(result),
        "wall_seconds": round(time.time() - started, 2),
    }
    beam_utils.write_json(beam_utils.join(args.output, "summary.json"), summary)
    lineage = beam_utils.read_json(args.lineage) if args.lineage else {}
    write_card(args.output, manifest, stage_summaries={**lineage.get("stages", {}), "corpus": summary},
               parameters=lineage.get("parameters"), sources=lineage.get("sources"))
    beam_utils.mark_complete(args.output)
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    summary = run(argv)
    print({k: v for k, v in summary.items() if k != "counters"})
