"""Releases -> sentences, chunks and chunk vectors: the per-release work of a build.

Pure and batchable: the single-process build and the Ray workers (`index.distributed`) run the same
functions, so both produce the same chunks and vectors. Chunk ids are numbered from 0 within each
release here; the build gives them their index-wide ids (`renumber`), in corpus order.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from . import config, embedder
from .annotate import annotate
from .chunker import chunk_release
from .types import Annotation, Chunk, Release


@dataclass
class Processed:
    """One release made ready for the index."""

    release: Release
    annotation: Annotation
    chunks: list[Chunk]  # chunk_id 0.. within the release until `renumber`
    vectors: np.ndarray | None = None  # one unit float32 row per chunk; None until embedded


#: what embeds a build's new releases: handed them in corpus order, it yields lists of `Processed`
#: covering exactly those releases in the same order (`index.build.local_processor`, `index.distributed`)
Processor = Callable[[list[Release]], Iterable[list[Processed]]]


def chunk_document(release: Release, chunk: Chunk) -> str:
    """What gets embedded and BM25-indexed for a chunk: the release title gives it context."""
    return f"{release.title}\n{chunk.text}"


def split(releases: list[Release]) -> list[Processed]:
    """Sentences and chunks of each release (no embedding)."""
    out = []
    for r, note in zip(releases, annotate([r.text for r in releases])):
        chunks = chunk_release(r.release_id, r.text, note.sentences, config.CHUNK_SETTINGS,
                               fits=lambda t, title=r.title: embedder.fits_window(f"{title}\n{t}"))
        out.append(Processed(r, note, chunks))
    return out


def embed(batch: list[Processed]) -> list[Processed]:
    """Fill in each release's chunk vectors, encoding the whole batch's chunks together."""
    texts = [chunk_document(p.release, c) for p in batch for c in p.chunks]
    vectors = embedder.encode(texts)
    row = 0
    for p in batch:
        p.vectors, row = vectors[row:row + len(p.chunks)], row + len(p.chunks)
    return batch


def process(releases: list[Release]) -> list[Processed]:
    """Split and embed a batch of releases."""
    return embed(split(releases))


def renumber(p: Processed, first_id: int) -> Processed:
    """The release's chunks with index-wide ids from `first_id` on."""
    return replace(p, chunks=[replace(c, chunk_id=first_id + i) for i, c in enumerate(p.chunks)])
