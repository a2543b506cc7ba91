"""The thin Beam shell shared by every stage: options, Parquet I/O, rejects, metrics, markers.

Guarantees:
- ``pipeline_options`` never lets a job fall back to a runner that needs a download: when no
  ``--runner`` is given it pins Beam's in-process ``FnApiRunner`` (the DirectRunner of Beam
  >= 2.68 first tries to fetch Prism from the internet).
- Parquet shards get deterministic names ``<prefix>-SSSSS-of-NNNNN.parquet``; every shard is
  written even when empty, so a folder's shape depends only on ``num_shards``.
- Every stage folder has one layout: the pages in ``<stage>/data/*.parquet`` (a folder holding
  nothing else, so pyarrow, pandas, Hugging Face ``datasets`` and DuckDB open it as a dataset),
  side outputs (``rejects/``, ``removed/``, ...) in folders of their own, and the summary, plots
  and ``_SUCCESS`` at the top. ``data_dir`` names the pages' folder, ``parquet_glob`` finds them.
- Output folders are only marked complete (``_SUCCESS``) after everything in them is written.
- Files are written through Beam's ``FileSystems``, so output folders may be local, ``gs://``
  or ``s3://``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.inputs import check_runner_installed
from pipeline.schema import REJECT_SCHEMA

DEFAULT_RUNNER = "FnApiRunner"
SUCCESS_MARKER = "_SUCCESS"
DATA_DIR = "data"
# Folders that hold nothing but shards: a stage's pages and its side outputs (the recall rounds'
# ``recalled/``, ``positives/``, ``history/`` ...). Any other folder is read as a stage folder.
SHARD_FOLDERS = frozenset({DATA_DIR, "recalled", "positives", "markup", "negatives", "history", "rejects", "removed",
                           "contaminated"})


def _flag_value(args: Sequence[str], flag: str) -> str | None:
    """The value of ``--flag=value`` / ``--flag value`` in ``args`` (the last one given), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(args):
            value = args[i + 1]
    return value


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """PipelineOptions from pass-through command-line args, with download-free defaults.

    - no ``--runner``: Beam's in-process ``FnApiRunner``;
    - ``--job_endpoint=embed`` (the portable runner's in-process job server) without
      ``--environment_type``: ``LOOPBACK`` (workers in this process), instead of Beam's default
      ``DOCKER``, which would pull ``apache/beam_python3.x_sdk``;
    - a runner whose extra is missing (Dataflow without ``[gcp]``) is refused with one line
      naming the extra to install (``pipeline.inputs.InputError``).
    """
    args = list(beam_args)
    if _flag_value(args, "--runner") is None:
        args.append(f"--runner={DEFAULT_RUNNER}")
    if _flag_value(args, "--job_endpoint") == "embed" and _flag_value(args, "--environment_type") is None:
        args.append("--environment_type=LOOPBACK")
    options = PipelineOptions(args)
    check_runner_installed(options)
    return options


LOCAL_RUNNERS = frozenset({"FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner",
                           "PrismRunner"})


def runs_in_this_machine(options: PipelineOptions) -> bool:
    """True for the runners that execute the job on this machine and hold its shuffles in this
    machine's memory: the direct runners (also in multi-processing mode) and the portable runner
    with its embedded job server (``--job_endpoint=embed``)."""
    from apache_beam.options.pipeline_options import PortableOptions, StandardOptions

    runner = options.view_as(StandardOptions).runner or DEFAULT_RUNNER
    name = runner if isinstance(runner, str) else type(runner).__name__
    name = name.rsplit(".", 1)[-1]
    if name in LOCAL_RUNNERS:
        return True
    return name == "PortableRunner" and options.view_as(PortableOptions).job_endpoint == "embed"


def join(base: str, *parts: str) -> str:
    """Join path parts for local paths and for ``gs://`` / ``s3://`` URLs alike."""
    return FileSystems.join(base, *parts)


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` (any Beam filesystem), atomically on local disk."""
    data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode("utf-8")
    write_bytes(path, data)


def write_bytes(path: str, data: bytes) -> None:
    """Write bytes to ``path``; on a local filesystem via a temporary file and an atomic rename."""
    if "://" not in path:
        import os
        import tempfile

        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return
    with FileSystems.create(path) as fh:
        fh.write(data)


def read_json(path: str) -> Any:
    with FileSystems.open(path) as fh:
        return json.loads(fh.read().decode("utf-8"))


def is_complete(output_dir: str) -> bool:
    """True when ``output_dir`` holds a completion marker written by ``mark_complete``."""
    return FileSystems.exists(join(output_dir, SUCCESS_MARKER))


def mark_complete(output_dir: str, info: dict | None = None) -> None:
    """Write the completion marker; call it last, after every output of the stage exists."""
    write_json(join(output_dir, SUCCESS_MARKER), {"completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(info or {})})


def clear_output(output_dir: str) -> None:
    """Remove a previous (possibly half-written) output folder so a stage starts clean."""
    if FileSystems.exists(output_dir):
        if "://" not in output_dir:
            import shutil

            shutil.rmtree(output_dir)
        else:
            matches = FileSystems.match([join(output_dir, "**")])[0].metadata_list
            if matches:
                FileSystems.delete([m.path for m in matches])


class WriteParquetShards(beam.PTransform):
    """Write dict rows to ``<directory>/<prefix>-SSSSS-of-NNNNN.parquet`` (zstd) with a fixed schema."""

    def __init__(self, directory: str, schema: pa.Schema, num_shards: int = 1, prefix: str = "part",
                 row_group_bytes: int = 64 * 1024 * 1024):
        super().__init__()
        self.directory = directory
        self.schema = schema
        self.num_shards = num_shards
        self.prefix = prefix
        self.row_group_bytes = row_group_bytes

    def expand(self, rows):
        names = self.schema.names
        return (
            rows
            | "Conform" >> beam.Map(lambda r: {n: r.get(n) for n in names})
            | "Write" >> beam.io.WriteToParquet(
                join(self.directory, self.prefix),
                self.schema,
                codec="zstd",
                num_shards=self.num_shards,
                shard_name_template="-SSSSS-of-NNNNN",
                file_name_suffix=".parquet",
                row_group_buffer_size=self.row_group_bytes,
            )
        )


def shard_of(key: str, num_shards: int) -> int:
    """The output shard of a row keyed ``key`` (stable across runs, runners and machines)."""
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % max(1, num_shards)


class _WriteSortedShardFn(beam.DoFn):
    def __init__(self, directory: str, schema: pa.Schema, num_shards: int, prefix: str, sort_key: str,
                 row_group_bytes: int):
        self.directory, self.schema, self.num_shards = directory, schema, num_shards
        self.prefix, self.sort_key, self.row_group_bytes = prefix, sort_key, row_group_bytes

    def process(self, element):
        shard, rows = element
        rows = sorted(rows, key=lambda r: (str(r.get(self.sort_key)), json.dumps(r, sort_keys=True, default=str)))
        path = join(self.directory, f"{self.prefix}-{shard:05d}-of-{self.num_shards:05d}.parquet")
        if "://" not in path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=self.schema)
        avg = max(1, table.nbytes // max(1, table.num_rows)) if table.num_rows else 1
        with FileSystems.create(path) as fh:
            pq.write_table(table, fh, compression="zstd", row_group_size=max(1, self.row_group_bytes // avg))
        yield path


class WriteSortedParquetShards(beam.PTransform):
    """Write dict rows as ``<directory>/<prefix>-SSSSS-of-NNNNN.parquet`` whose bytes depend only on
    the rows: a row goes to shard ``shard_of(row[sort_key])``, each shard is sorted by
    ``sort_key`` (then by the whole row), and every shard file is written, empty ones included.
    The same input therefore gives byte-identical files on every runner and in every run.
    One worker holds one shard in memory while writing it: size ``num_shards`` accordingly."""

    def __init__(self, directory: str, schema: pa.Schema, num_shards: int, prefix: str = "part",
                 sort_key: str = "id", row_group_bytes: int = 64 * 1024 * 1024):
        super().__init__()
        self.directory, self.schema, self.num_shards = directory, schema, max(1, num_shards)
        self.prefix, self.sort_key, self.row_group_bytes = prefix, sort_key, row_group_bytes

    def expand(self, rows):
        names, n, key = self.schema.names, self.num_shards, self.sort_key
        keyed = rows | "KeyByShard" >> beam.Map(lambda r: (shard_of(str(r.get(key)), n), {c: r.get(c) for c in names}))
        every = rows.pipeline | "EveryShard" >> beam.Create([(i, None) for i in range(n)])
        return (
            (keyed, every)
            | "WithEmptyShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "DropMarkers" >> beam.Map(lambda kv: (kv[0], [r for r in kv[1] if r is not None]))
            | "WriteSorted" >> beam.ParDo(_WriteSortedShardFn(self.directory, self.schema, n, self.prefix, key,
                                                              self.row_group_bytes))
        )


class WriteRejects(beam.PTransform):
    """Write ``REJECT_SCHEMA`` rows to ``<output_dir>/rejects/``."""

    def __init__(self, output_dir: str, num_shards: int = 1):
        super().__init__()
        self.output_dir = output_dir
        self.num_shards = num_shards

    def expand(self, rejects):
        return rejects | WriteParquetShards(join(self.output_dir, "rejects"), REJECT_SCHEMA, self.num_shards)


def count(namespace: str, name: str) -> None:
    """Increment a Beam counter (for use inside transforms)."""
    Metrics.counter(namespace, name).inc()


def counters(result, namespace: str | None = None) -> dict[str, int]:
    """The final values of a finished pipeline's counters, as ``{"namespace:name": value}``.

    Uses committed values where the runner reports them, attempted values otherwise.
    """
    query = result.metrics().query(MetricsFilter())
    out: dict[str, int] = {}
    for counter in query["counters"]:
        key = counter.key.metric
        if namespace and key.namespace != namespace:
            continue
        value = counter.committed if counter.committed is not None else counter.attempted
        name = f"{key.namespace}:{key.name}"
        out[name] = out.get(name, 0) + int(value or 0)
    return dict(sorted(out.items()))


_LAST_RESULT: list[Any] = []


def run_pipeline(pipeline: beam.Pipeline) -> Any:
    """Run a built pipeline to completion and return its result.

    The result is also kept for ``last_result()``: with ``--runner=DataflowRunner --dry_run=True``
    it carries the built (unsubmitted) Dataflow job as ``result.job``, which the orchestrator and
    the dry-run tests inspect.
    """
    result = pipeline.run()
    result.wait_until_finish()
    _LAST_RESULT[:] = [result]
    return result


def last_result() -> Any:
    """The result of the most recent ``run_pipeline`` call in this process (None before any)."""
    return _LAST_RESULT[0] if _LAST_RESULT else None


def is_dry_run(options: PipelineOptions) -> bool:
    """True when the job is only being built (``--dry_run=True``), so driver-side data work must be skipped."""
    from apache_beam.options.pipeline_options import TestOptions

    return bool(options.view_as(TestOptions).dry_run)


def read_parquet_rows(pattern: str | Iterable[str]) -> beam.PTransform:
    """A transform reading dict rows from Parquet files matching one glob (or several)."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    if len(patterns) == 1:
        return beam.io.ReadFromParquet(patterns[0])
    return beam.Create(patterns) | beam.io.ReadAllFromParquet()


def data_dir(stage_dir: str) -> str:
    """The folder of a stage's pages: ``<stage_dir>/data`` (nothing else is written there)."""
    return join(stage_dir, DATA_DIR)


def parquet_glob(path: str) -> str:
    """A glob for the Parquet pages that ``path`` stands for.

    - a glob or a ``.parquet`` file: ``path`` itself;
    - a stage folder (``out/extract``, ``gs://b/dsm/dedup``): ``<path>/data/*.parquet``;
    - a folder of shards (named ``data``, ``recalled``, ``positives``, ... as the stages write
      them): ``<path>/*.parquet``;
    - a local folder of the user's own shards (Parquet files directly in it, no ``data/``):
      ``<path>/*.parquet``.
    Remote folders are told apart by name only, so building a job (``--dry_run=True``, offline)
    never touches ``gs://`` or ``s3://``.
    """
    if any(ch in path for ch in "*?[") or path.endswith(".parquet"):
        return path
    path = path.rstrip("/") or path
    flat, nested = join(path, "*.parquet"), join(data_dir(path), "*.parquet")
    if "://" not in path:
        import glob
        import os

        if not glob.glob(os.path.join(path, DATA_DIR, "*.parquet")) and glob.glob(os.path.join(path, "*.parquet")):
            return flat
    return flat if path.rsplit("/", 1)[-1] in SHARD_FOLDERS else nested
