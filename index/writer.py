"""Writing one index generation: releases and chunks into SQLite, vectors, then BM25, FAISS, the manifest.

A generation is written release by release (`GenerationWriter`), so a build's memory does not grow with
the corpus' text. BM25's document frequencies are counted as chunks are added and kept in SQLite
(`terms`), so answering reads idf from the index's own table rather than from bm25s's arrays; the files
the corpus was read from are kept too (`corpus_files`), so staleness is known without reading them.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import bm25, generations
from .dates import day_number
from .files import file_sha256, fsync_dir
from .generations import BM25_DIR, DB, FAISS_FILE, FILES, MANIFEST, ROWS, VECTORS, checkpoint
from .pipeline import chunk_document
from .store import ROW_DTYPE, IndexData, vectors_at
from .types import Annotation, Chunk, CorpusFile, Release

_SCHEMA = """
CREATE TABLE releases (pos INTEGER PRIMARY KEY, release_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
                       text TEXT NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL, date TEXT,
                       sha256 TEXT NOT NULL, sentences TEXT NOT NULL, url TEXT NOT NULL DEFAULT '');
CREATE TABLE chunks (chunk_id INTEGER PRIMARY KEY, row INTEGER NOT NULL, release_pos INTEGER NOT NULL,
                     start INTEGER NOT NULL, "end" INTEGER NOT NULL, n_tokens INTEGER NOT NULL);
CREATE TABLE terms (stem TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE corpus_files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                           sha256 TEXT NOT NULL) WITHOUT ROWID;
"""


class _TokenRows(Sequence):
    """The BM25 token ids of every chunk, kept as int32 arrays rather than lists of Python ints (a tenth of
    the memory at a million chunks); bm25s reads them row by row as lists. Counts each token's documents
    (chunks holding it) on the way."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.lengths: list[int] = []
        self.flat, self.offsets = np.zeros(0, np.int32), np.zeros(1, np.int64)
        self.df = np.zeros(0, np.int64)  # token id -> chunks holding it

    def extend(self, rows: list[list[int]]) -> None:
        flat = np.fromiter((t for row in rows for t in row), np.int32)
        lengths = [len(row) for row in rows]
        self.parts.append(flat)
        self.lengths += lengths
        if len(flat):
            which = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
            pairs = np.unique(which << 32 | flat.astype(np.int64))  # each (chunk, token) once
            tokens, counts = np.unique(pairs & 0xFFFFFFFF, return_counts=True)
            if tokens[-1] >= len(self.df):
                self.df = np.concatenate([self.df, np.zeros(max(int(tokens[-1]) + 1 - len(self.df), len(self.df)),
                                                            np.int64)])
            self.df[tokens] += counts

    def seal(self) -> "_TokenRows":
        """Join the parts; call once, before handing the rows to bm25s."""
        self.flat = np.concatenate(self.parts) if self.parts else np.zeros(0, np.int32)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])
        self.parts = []
        return self

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.flat[self.offsets[i]:self.offsets[i + 1]].tolist()


class GenerationWriter:
    """Writes one new generation release by release, in corpus order, then switches `current` to it.

    Use as a context manager: leaving it with an exception removes the half-written generation.
    """

    def __init__(self, index_dir: Path, dim: int, vector_kind: str | None = None, forced: bool = False):
        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.dim, self.vector_kind, self.forced = dim, vector_kind, forced
        self.gen = generations.new_generation(self.index_dir)
        self.db = sqlite3.connect(self.gen / DB)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        self.vec_file = open(self.gen / VECTORS, "wb")
        self.tokenizer = bm25.tokenizer()
        self.tokens = _TokenRows()
        self.rows: list[np.ndarray] = []
        self.n_releases = self.n_chunks = 0

    def __enter__(self) -> "GenerationWriter":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            self.abort()

    def add(self, release: Release, annotation: Annotation, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Append one release with its chunks (final ids) and their unit vectors."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim)
        pos = self.n_releases
        r = release
        self.db.execute("INSERT INTO releases VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (pos, r.release_id, r.title, r.text, r.path, r.source, r.date, r.sha256,
                         json.dumps(annotation.sentences), r.url))
        self.db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?)",
                            [(c.chunk_id, self.n_chunks + i, pos, c.start, c.end, c.n_tokens)
                             for i, c in enumerate(chunks)])
        self.vec_file.write(vectors.tobytes())
        rows = np.zeros(len(chunks), ROW_DTYPE)
        rows["chunk_id"], rows["release_pos"], rows["day"] = [c.chunk_id for c in chunks], pos, day_number(r.date)
        self.rows.append(rows)
        self.tokens.extend(self.tokenizer.tokenize([chunk_document(r, c) for c in chunks], update_vocab=True,
                                                   return_as="ids", show_progress=False))
        self.n_releases += 1
        self.n_chunks += len(chunks)

    def add_files(self, files: list[CorpusFile]) -> None:
        """Record the corpus files the releases were read from (what `index.freshness` compares with)."""
        self.db.executemany("INSERT INTO corpus_files VALUES (?,?,?,?)",
                            [(f.path, f.size, f.mtime_ns, f.sha256) for f in files])

    def _write_terms(self) -> None:
        df = self.tokens.df
        self.db.executemany("INSERT INTO terms VALUES (?,?)",
                            ((stem, int(df[i])) for stem, i in self.tokenizer.get_vocab_dict().items()
                             if i < len(df) and df[i] > 0))

    def finish(self, manifest: dict, previous: IndexData | None = None) -> Path:
        """Write the FAISS and BM25 indexes, checksums and manifest, then switch `current` here.

        An IVF index of the `previous` generation that still suits the new size is updated (its lists
        lose the chunks that left and gain the new ones) instead of trained again.
        """
        import bm25s
        import faiss

        from . import vectors as vector_index

        gen = self.gen
        self.vec_file.close()
        self._write_terms()
        self.db.execute("CREATE INDEX chunks_by_release ON chunks(release_pos)")
        self.db.commit()
        self.db.close()
        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, ROW_DTYPE)
        np.save(gen / ROWS, rows)
        # BM25, then FAISS, each dropped once written: the build's peak memory is the larger of the two
        retriever = bm25s.BM25()
        retriever.index(self.tokenizer.to_tokenized_tuple(self.tokens.seal()), show_progress=False)
        retriever.save(str(gen / BM25_DIR), show_progress=False)
        del retriever
        self.tokens = _TokenRows()
        stored = vectors_at(gen, len(rows), self.dim)
        index = _updated_ivf(previous, stored, rows["chunk_id"], self.vector_kind)
        if index is None:
            index = vector_index.build(stored, rows["chunk_id"], kind=self.vector_kind)
        faiss.write_index(index, str(gen / FAISS_FILE))
        described = vector_index.describe(index)
        del index
        checkpoint("save-files")

        names = [*FILES, *(f"{BM25_DIR}/{p.name}" for p in sorted((gen / BM25_DIR).iterdir()))]
        manifest = dict(manifest, releases=self.n_releases, chunks=self.n_chunks,
                        vector_index=dict(described, forced=self.forced),
                        files={name: file_sha256(gen / name) for name in names},
                        sizes={name: (gen / name).stat().st_size for name in names},
                        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        with open(gen / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False)
        for name in [*names, MANIFEST]:
            with open(gen / name, "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(gen / BM25_DIR)
        fsync_dir(gen)
        generations.switch(self.index_dir, gen)
        return gen

    def abort(self) -> None:
        """Remove the half-written generation (a build that failed leaves the index as it was)."""
        for closing in (self.vec_file.close, self.db.close):
            try:
                closing()
            except Exception:
                pass
        shutil.rmtree(self.gen, ignore_errors=True)


def _updated_ivf(previous: IndexData | None, stored: np.ndarray, ids: np.ndarray, kind: str | None):
    """The previous generation's IVF index with the chunks that left removed and the new ones added, when
    it suits the new size (k-means is most of an IVF build: minutes at a million chunks); else None."""
    from . import vectors as vector_index

    if previous is None or previous.path is None or vector_index.kind_of(previous.vectors) != "ivf":
        return None
    if not vector_index.suits(previous.vectors, len(ids), kind):
        return None
    index = vector_index.load(previous.path / FAISS_FILE, mmap=False)  # a memory-mapped index is read-only
    before = np.asarray(previous.rows["chunk_id"])
    gone = np.setdiff1d(before, ids)
    new = ~np.isin(ids, before)
    if len(gone):
        index.remove_ids(gone)
    if new.any():
        index.add_with_ids(np.ascontiguousarray(stored[new], dtype=np.float32), ids[new])
    return index


def disk_full_message(exc: OSError, index_dir: Path) -> str | None:
    """One sentence for a build that ran out of disk space, else None."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk holding {index_dir} is full; free some space and build again "
                f"(the previous index is unchanged).")
    return None
