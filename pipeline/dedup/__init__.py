"""Deduplication stage: URL dedup (``urls``), MinHash LSH (``minhash``), connected components
(``components``), the composite transforms (``transforms``) and the job (``pipeline.run``).

CLI: ``python -m pipeline.dedup --input DIR_OR_GLOB --output DIR [Beam options]``.
"""
