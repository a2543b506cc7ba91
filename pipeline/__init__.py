"""The corpus pipeline: Beam stages that turn Common Crawl into a math corpus (see README.md)."""
from __future__ import annotations

import importlib.util as _importlib_util


def _import_beam_quietly() -> None:
    """Import ``apache_beam.io`` once without its import-time noise.

    Without the ``[gcp]`` extra, importing ``apache_beam.io`` logs "apitools not found, and
    bigquery client libraries are not available ..." on the root logger, which also configures
    the root logger behind our commands' backs. Nothing here uses BigQuery, and a Dataflow run
    is refused up front with the extra to install (``beam_utils.pipeline_options``), so that one
    message is dropped; every other message passes, and no handler is left behind.
    """
    import logging

    root = logging.getLogger()

    class _DropApitoolsNotice(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not str(record.msg).startswith("apitools not found")

    drop = _DropApitoolsNotice()
    placeholder = logging.NullHandler() if not root.handlers else None  # keeps logging.warning from calling basicConfig
    root.addFilter(drop)
    if placeholder:
        root.addHandler(placeholder)
    try:
        import apache_beam.io  # noqa: F401
    finally:
        root.removeFilter(drop)
        if placeholder:
            root.removeHandler(placeholder)


if _importlib_util.find_spec("apache_beam") is not None and _importlib_util.find_spec("apitools") is None:
    _import_beam_quietly()
