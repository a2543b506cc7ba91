"""Checking a command's inputs before any work starts.

A missing or wrong input (no model file, an input folder with no shards, a local ``--output`` for
a Dataflow job, a runner whose extra is not installed) ends the command with one line on stderr
saying what is wrong and how to fix it, never with a traceback from deep inside a Beam job.

``InputError`` is a ``SystemExit`` whose code is the message: raised anywhere in a command
(``run(argv)``, ``main(argv)``) it ends the program with that one line on stderr and exit status 1,
with no traceback; a caller that runs a stage in-process can still catch it.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

# Runners whose workers run elsewhere: they can read and write only shared storage.
REMOTE_RUNNERS = ("DataflowRunner",)
GCP_EXTRA_HINT = 'install the [gcp] extra: pip install -e ".[gcp]"'


class InputError(SystemExit):
    """A wrong input, reported as ``error: <what is wrong>; <how to fix it>`` (exit status 1)."""

    def __init__(self, message: str):
        self.message = f"error: {message}"
        super().__init__(self.message)


def matched_files(pattern: str) -> list[str]:
    """The files matching ``pattern`` (local, gs://, s3://), sorted; [] when none (or not readable)."""
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001 - a pattern Beam cannot list is reported as matching nothing
        return []


def require_file(path: str, flag: str, hint: str) -> str:
    """``path`` if it exists, else ``InputError("<flag> <path>: no such file; <hint>")``."""
    if not FileSystems.exists(path):
        raise InputError(f"{flag} {path}: no such file; {hint}")
    return path


def require_files(pattern: str, flag: str, hint: str) -> list[str]:
    """The files ``pattern`` matches, or ``InputError`` when it matches none."""
    files = matched_files(pattern)
    if not files:
        raise InputError(f"{flag} {pattern}: no file matches; {hint}")
    return files


def require_pages(path: str, flag: str = "--input") -> str:
    """The glob of the Parquet pages ``path`` stands for (``beam_utils.parquet_glob``), checked to
    match at least one file; else ``InputError`` naming where it looked."""
    from pipeline.beam_utils import parquet_glob

    pattern = parquet_glob(path)
    if not matched_files(pattern):
        looked = "" if pattern == path else f" (looked for {pattern})"
        raise InputError(f"{flag} {path}: no Parquet pages found{looked}; give the folder of a finished stage "
                         "(e.g. out/dedup), a folder of .parquet shards or a glob")
    return pattern


SEED_HINT = "give Parquet/JSONL files with a text column (the bundled seed: data/seed/math_seed.jsonl.gz)"


def require_sources(sources: Sequence[str], flag: str = "--seed", hint: str = SEED_HINT) -> None:
    """Each of ``sources`` (text files, globs or folders for ``classifiers.text_sources``) matches
    a readable file; else ``InputError`` naming the first that does not."""
    from classifiers.text_sources import SourceError, expand_sources

    for source in sources:
        try:
            expand_sources(source)
        except SourceError as exc:
            raise InputError(f"{flag} {source}: {exc}; {hint}") from None


def beam_args_only(args: Sequence[str], prog: str) -> list[str]:
    """``args`` (what a command's own parser left over), checked to be Beam pipeline options.

    For commands that run on the driver only (``classifiers.train``) but, like every command,
    accept Beam's options (``--direct_running_mode``, ``--s3_region_name``, ...). Anything that
    is not a Beam option is an ``InputError`` naming it.
    """
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in _all_subclasses(PipelineOptions)}.values():
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(list(args))
    if unknown:
        raise InputError(f"{prog}: unrecognized arguments {' '.join(unknown)}; see {prog} --help "
                         "(Beam pipeline options are accepted too)")
    return list(args)


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def runner_name(options: PipelineOptions) -> str:
    return str(options.get_all_options().get("runner") or "")


def check_runner_installed(options: PipelineOptions) -> None:
    """A Dataflow job needs the ``[gcp]`` extra (apitools, the GCS client): say so before Beam fails."""
    if runner_name(options) in REMOTE_RUNNERS:
        missing = [m for m in ("apitools", "google.cloud.storage") if not _importable(m)]
        if missing:
            raise InputError(f"--runner={runner_name(options)} needs {', '.join(missing)}; {GCP_EXTRA_HINT}")


def check_output_reachable(output: str, options: PipelineOptions, flag: str = "--output") -> None:
    """A job whose workers run elsewhere (Dataflow) cannot write to a local folder: refuse it at once."""
    runner = runner_name(options)
    if runner in REMOTE_RUNNERS and "://" not in output:
        raise InputError(f"{flag} {output}: a local folder, but --runner={runner} workers cannot write there; "
                         "give a gs:// folder (e.g. --output gs://BUCKET/dsm)")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
