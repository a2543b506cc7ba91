"""Finding and opening the files of a data source: local paths, ``gs://`` and ``s3://`` via fsspec.

A source's ``path`` is a glob (``out/corpus/*.parquet``, ``gs://bucket/corpus/**/*.parquet``), a
single file, or a folder (then every ``*.parquet``, ``*.jsonl``, ``*.jsonl.gz`` and ``*.json.gz``
file directly inside it). Files are returned sorted, so the order never depends on how the
filesystem lists them. Remote filesystems need their fsspec backend installed (``gcsfs`` for
``gs://``, ``s3fs`` for ``s3://``); the error says so when it is missing.
"""
from __future__ import annotations

from pathlib import Path

import fsspec

PARQUET = "parquet"
JSONL = "jsonl"
FORMATS = (PARQUET, JSONL)
_FOLDER_PATTERNS = ("*.parquet", "*.jsonl", "*.jsonl.gz", "*.json.gz")


def _filesystem(path: str):
    try:
        return fsspec.core.url_to_fs(path)
    except (ImportError, ValueError) as exc:
        raise ImportError(f"cannot open {path!r}: {exc} (install the fsspec backend, e.g. gcsfs or s3fs)") from exc


def _unstrip(fs, path: str) -> str:
    """A path as returned by ``fs.glob`` turned back into a URL the same filesystem can open."""
    return fs.unstrip_protocol(path) if "://" not in path and not isinstance(fs, fsspec.implementations.local.LocalFileSystem) else path


def resolve_local(path: str, base: str | Path | None = None) -> str:
    """``path`` unchanged, unless it is relative, does not exist from the working directory and does
    exist under ``base`` (used so the bundled configs also work when run from another folder)."""
    if "://" in path or Path(path).is_absolute() or base is None:
        return path
    if any(Path().glob(path)) or Path(path).exists():
        return path
    candidate = Path(base) / path
    if candidate.exists() or any(Path(base).glob(path)):
        return str(candidate)
    return path


def list_source_files(path: str) -> list[str]:
    """The sorted files of a source (glob, file or folder); an empty list when nothing matches."""
    fs, root = _filesystem(path)
    if fs.isdir(root):
        found: set[str] = set()
        for pattern in _FOLDER_PATTERNS:
            found.update(fs.glob(root.rstrip("/") + "/" + pattern))
        matches = sorted(found)
    elif fs.exists(root) and not any(c in root for c in "*?["):
        matches = [root]
    else:
        matches = sorted(fs.glob(root))
    return [_unstrip(fs, m) for m in matches if not fs.isdir(m)]


def detect_format(path: str, declared: str = "auto") -> str:
    """``parquet`` or ``jsonl`` from the declared format, else from the file name."""
    if declared != "auto":
        if declared not in FORMATS:
            raise ValueError(f"unknown format {declared!r}; choose auto, {', '.join(FORMATS)}")
        return declared
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return PARQUET
    if any(name.endswith(ext) for ext in (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson", ".jsonl.zst", ".json")):
        return JSONL
    raise ValueError(f"cannot tell the format of {path!r} from its name; set the source's format")


def open_binary(path: str, decompress: bool = False):
    """An open binary file object for ``path`` (any fsspec URL); gzip etc. decoded when ``decompress``."""
    return fsspec.open(path, "rb", compression="infer" if decompress else None).open()
