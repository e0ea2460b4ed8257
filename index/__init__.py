"""The index stage: corpus folder -> releases -> chunks -> vectors, BM25 and annotations on disk.

Knows nothing of answering; `qa` reads what is built here through `index.store.load`.
"""
from .errors import BuildLockedError, CorpusError, IndexStoreError

__all__ = ["CorpusError", "IndexStoreError", "BuildLockedError"]
