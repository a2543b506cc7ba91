"""Streaming pre-training data: weighted Parquet/JSONL sources -> tokenised, packed sequences.

- ``files``: finding a source's files (local, gs://, s3://) and their format.
- ``readers``: one source's documents for one data stream, lazily, resumably.
- ``mixture``: mixing sources by tokens.
- ``packing``: documents -> fixed-length sequences with EOS (optional per-document masking).
- ``stream``: one data stream (readers + tokenizer + mixture + packer).
- ``loader``: configuration and the step batches of one rank (with a prefetch thread).
"""
