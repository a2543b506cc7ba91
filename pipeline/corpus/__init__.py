"""The final corpus stage: token counts, deterministic Parquet shards, manifest and dataset card."""
