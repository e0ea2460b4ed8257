"""Reading one index generation: SQLite tables read on demand, memory-mapped vectors, rows and BM25.

A loaded generation (`IndexData`) memory-maps the vectors, the rows and BM25 and reads releases, chunks
and BM25 term counts from SQLite when asked, so a reader's memory does not grow with the corpus' text.
`load` checks the generation's files against its manifest first (`index.generations` holds the layout
and the lifecycle, `index.writer` the writing, `index.search` the query API answering uses).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import bm25, config
from .errors import IndexStoreError
from .files import file_sha256
from .generations import BM25_DIR, DB, FAISS_FILE, FILES, MANIFEST, REBUILD_HINT, ROWS, VECTORS, current_generation
from .types import Annotation, Chunk, CorpusFile, Release

#: one row of rows.npy; `day` is the release's date as a proleptic ordinal (index.dates.day_number), -1 when undated
ROW_DTYPE = np.dtype([("chunk_id", "<i8"), ("release_pos", "<i4"), ("day", "<i4")])

__all__ = ["IndexData", "load", "read_manifest", "verify_index"]


def expected_settings() -> dict:
    """The settings an index must have been built with to be used as is."""
    from .embedder import dimension

    return {
        "format_version": config.FORMAT_VERSION,
        "model": config.MODEL_NAME,
        "dim": dimension(),
        "chunking": config.CHUNK_SETTINGS.to_dict(),
        "sentences": config.SENTENCE_SPLITTER,
        "bm25": bm25.SETTINGS,
    }


def settings_mismatch(manifest: dict, expected: dict) -> str | None:
    """A sentence naming the first setting that differs, or None."""
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            return f"it was built with {key} = {have!r}, this version uses {want!r}"
    return None


class _Database:
    """A read-only SQLite connection shared by threads (one query at a time; they are tiny)."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self.lock = threading.Lock()

    def all(self, sql: str, args=()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    def one(self, sql: str, args=()):
        rows = self.all(sql, args)
        return rows[0] if rows else None


#: the Release fields' columns, in field order
_RELEASE_COLUMNS = "release_id, title, text, path, source, date, sha256, url"


class _ByRelease(Mapping):
    """release_id -> what `_fetch` reads of that release from SQLite (cached), iterated in corpus order."""

    def __init__(self, db: _Database):
        self.db = db
        self._get = lru_cache(maxsize=4096)(self._fetch)

    def _fetch(self, release_id: str):
        raise NotImplementedError

    def __getitem__(self, release_id: str):
        value = self._get(release_id)
        if value is None:
            raise KeyError(release_id)
        return value

    def __contains__(self, release_id) -> bool:
        return self._get(release_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter([rid for (rid,) in self.db.all("SELECT release_id FROM releases ORDER BY pos")])

    def __len__(self) -> int:
        return self.db.one("SELECT COUNT(*) FROM releases")[0]


class ReleaseTable(_ByRelease):
    """release_id -> Release, read from SQLite on demand, iterated in corpus order."""

    def _fetch(self, release_id: str) -> Release | None:
        row = self.db.one(f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE release_id = ?", (release_id,))
        return Release(*row) if row else None

    def values(self):
        return [Release(*row) for row in self.db.all(f"SELECT {_RELEASE_COLUMNS} FROM releases ORDER BY pos")]

    def items(self):
        return [(r.release_id, r) for r in self.values()]

    def sources(self) -> list[str]:
        """Each release's source ('' when it names none), in corpus order: item i is release position i."""
        return [source for (source,) in self.db.all("SELECT source FROM releases ORDER BY pos")]

    def hashes(self) -> dict[str, dict]:
        """release_id -> {sha256, title, path}, in corpus order (what a build compares with)."""
        return {rid: {"sha256": sha, "title": title, "path": path}
                for rid, sha, title, path in self.db.all("SELECT release_id, sha256, title, path FROM releases "
                                                         "ORDER BY pos")}


class AnnotationTable(_ByRelease):
    """release_id -> Annotation (its sentences), read from SQLite on demand."""

    def _fetch(self, release_id: str) -> Annotation | None:
        row = self.db.one("SELECT sentences FROM releases WHERE release_id = ?", (release_id,))
        return Annotation([tuple(s) for s in json.loads(row[0])]) if row else None


class ChunkTable(Mapping):
    """chunk_id -> Chunk (its text cut from its release), read from SQLite on demand."""

    _COLUMNS = 'c.chunk_id, r.release_id, c.start, c."end", c.n_tokens'
    _FROM = " FROM chunks c JOIN releases r ON r.pos = c.release_pos"
    _SELECT = "SELECT " + _COLUMNS + _FROM

    def __init__(self, db: _Database, releases: ReleaseTable):
        self.db, self.releases = db, releases

    def _chunk(self, row) -> Chunk:
        cid, rid, s, e, n = row
        return Chunk(cid, rid, s, e, self.releases[rid].text[s:e], n)

    def __getitem__(self, chunk_id) -> Chunk:
        row = self.db.one(self._SELECT + " WHERE c.chunk_id = ?", (int(chunk_id),))
        if row is None:
            raise KeyError(chunk_id)
        return self._chunk(row)

    def __contains__(self, chunk_id) -> bool:
        try:
            return self.db.one("SELECT 1 FROM chunks WHERE chunk_id = ?", (int(chunk_id),)) is not None
        except (TypeError, ValueError):
            return False

    def __iter__(self) -> Iterator[int]:
        return iter([cid for (cid,) in self.db.all("SELECT chunk_id FROM chunks ORDER BY chunk_id")])

    def __len__(self) -> int:
        return self.db.one("SELECT COUNT(*) FROM chunks")[0]

    def values(self):
        return [self._chunk(row) for row in self.db.all(self._SELECT + " ORDER BY c.chunk_id")]

    def items(self):
        return [(c.chunk_id, c) for c in self.values()]

    def of_release(self, release_id: str) -> list[Chunk]:
        """A release's chunks, in text order."""
        return [self._chunk(row) for row in self.db.all(
            self._SELECT + " WHERE r.release_id = ? ORDER BY c.start", (release_id,))]

    def with_rows(self, release_id: str) -> tuple[list[Chunk], np.ndarray]:
        """A release's chunks and their vector rows, in text order, in one query."""
        found = self.db.all(f"SELECT {self._COLUMNS}, c.row{self._FROM} WHERE r.release_id = ? ORDER BY c.start",
                            (release_id,))
        return [self._chunk(row[:5]) for row in found], np.asarray([row[5] for row in found], dtype=np.int64)


@dataclass
class IndexData:
    """One generation of the index, opened for reading: big parts memory-mapped or read on demand."""

    manifest: dict
    releases: ReleaseTable
    annotations: AnnotationTable
    chunks: ChunkTable
    vectors: object  # the FAISS index, ids = chunk ids
    stored: np.ndarray  # memory-mapped unit chunk vectors, one row per chunk (rows.npy order)
    rows: np.ndarray  # memory-mapped ROW_DTYPE records
    bm25: object  # bm25s.BM25 (memory-mapped), documents in rows order
    path: Path | None = None

    @property
    def generation(self) -> str:
        return self.path.name if self.path else ""

    @property
    def bm25_ids(self) -> np.ndarray:
        """The chunk id of each BM25 document."""
        return self.rows["chunk_id"]

    def chunks_and_vectors(self, release_id: str) -> tuple[list[Chunk], np.ndarray]:
        """A release's chunks and their stored vectors, in text order (what a build carries over)."""
        chunks, rows = self.chunks.with_rows(release_id)
        return chunks, np.asarray(self.stored[rows])

    def vectors_of(self, release_id: str) -> np.ndarray:
        """The stored vectors of a release's chunks, in text order."""
        return self.chunks_and_vectors(release_id)[1]

    def document_frequency(self, stem: str) -> int:
        """How many chunks hold `stem` (a BM25 token), counted when the generation was written."""
        row = self.releases.db.one("SELECT df FROM terms WHERE stem = ?", (stem,))
        return int(row[0]) if row else 0


def vectors_at(gen: Path, n: int, dim: int) -> np.ndarray:
    if n == 0:
        return np.zeros((0, dim), np.float32)
    return np.memmap(gen / VECTORS, dtype=np.float32, mode="r", shape=(n, dim))


def _manifest_at(gen: Path | None, index_dir: Path) -> dict:
    if gen is None or not (gen / MANIFEST).is_file():
        raise IndexStoreError(
            f"No index found in {index_dir}; build it with `python -m index build --index {index_dir}`.")
    try:
        manifest = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
        return manifest
    except (OSError, ValueError):
        raise IndexStoreError(f"The index manifest in {gen} is unreadable; {REBUILD_HINT}.") from None


def read_manifest(index_dir: Path) -> dict:
    """The manifest of the current generation; IndexStoreError if there is none."""
    return _manifest_at(current_generation(index_dir), index_dir)


def _read_current(index_dir: Path, read, empty):
    """`read(db)` on the current generation's SQLite file, or `empty` when there is none or it is unreadable."""
    gen = current_generation(Path(index_dir))
    if gen is None or not (gen / DB).is_file():
        return empty
    try:
        db = _Database(gen / DB)
        try:
            return read(db)
        finally:
            db.conn.close()
    except sqlite3.Error:
        return empty


def release_hashes(index_dir: Path) -> dict[str, dict]:
    """release_id -> {sha256, title, path} of the current generation, in corpus order; {} when unreadable."""
    return _read_current(index_dir, lambda db: ReleaseTable(db).hashes(), {})


def corpus_files(index_dir: Path) -> dict[str, CorpusFile] | None:
    """The corpus files the current generation was built from, by path; None when unreadable."""
    return _read_current(index_dir, lambda db: {p: CorpusFile(p, size, mtime, sha) for p, size, mtime, sha in
                                                db.all("SELECT path, size, mtime_ns, sha256 FROM corpus_files")},
                         None)


def _verify_files(gen: Path, manifest: dict, index_dir: Path, checksums: bool = True) -> None:
    """IndexStoreError unless every file the manifest lists is there, of its size (and checksum)."""
    files, sizes = manifest.get("files"), manifest.get("sizes")
    if not isinstance(files, dict) or not isinstance(sizes, dict):
        raise IndexStoreError(f"The index manifest in {gen} lists no files; {REBUILD_HINT}.")
    for name in [*FILES, *(k for k in files if k.startswith(BM25_DIR + "/"))]:
        path = gen / name
        if not path.is_file():
            raise IndexStoreError(f"The index in {index_dir} is incomplete ({name} is missing); {REBUILD_HINT}.")
        if path.stat().st_size != sizes.get(name) or (checksums and files.get(name) != file_sha256(path)):
            raise IndexStoreError(
                f"The index file {name} in {index_dir} is corrupt (its checksum does not match); {REBUILD_HINT}.")


def verify_index(index_dir: str | Path | None = None) -> dict:
    """Check the current generation's files against its manifest (no parsing); returns the manifest."""
    index_dir = config.index_dir(index_dir)
    gen = current_generation(index_dir)
    manifest = _manifest_at(gen, index_dir)
    _verify_files(gen, manifest, index_dir)
    return manifest


def load(index_dir: str | Path | None = None, verify: bool = True, check_settings: bool = True) -> IndexData:
    """Open the current generation, verifying checksums and settings; IndexStoreError otherwise.

    If a build switches `current` and prunes the generation while it is being read, the
    load starts again on the new one.
    """
    index_dir = config.index_dir(index_dir)
    for attempt in range(3):
        gen = current_generation(index_dir)
        try:
            return _load_generation(index_dir, gen, verify, check_settings)
        except IndexStoreError:
            if attempt == 2 or current_generation(index_dir) == gen:
                raise
    raise AssertionError("unreachable")


def _load_generation(index_dir: Path, gen: Path | None, verify: bool, check_settings: bool) -> IndexData:
    import bm25s

    from . import vectors as vector_index

    manifest = _manifest_at(gen, index_dir)
    if check_settings:
        why = settings_mismatch(manifest, expected_settings())
        if why:
            raise IndexStoreError(f"The index in {index_dir} was built with other settings ({why}); {REBUILD_HINT}.")
    _verify_files(gen, manifest, index_dir, checksums=verify)
    try:
        db = _Database(gen / DB)
        releases = ReleaseTable(db)
        chunks = ChunkTable(db, releases)
        rows = np.load(gen / ROWS, mmap_mode="r")
        n_chunks, n_releases = int(manifest["chunks"]), int(manifest["releases"])
        if rows.dtype != ROW_DTYPE or len(rows) != n_chunks or len(chunks) != n_chunks or len(releases) != n_releases:
            raise ValueError("row counts disagree")
        stored = vectors_at(gen, n_chunks, int(manifest["dim"]))
        index = vector_index.load(gen / FAISS_FILE)
        if index.ntotal != n_chunks:
            raise ValueError("the vector index holds another number of chunks")
        recorded = manifest.get("vector_index", {}).get("kind")
        if vector_index.kind_of(index) != recorded:
            raise ValueError(f"the FAISS index is {vector_index.kind_of(index)!r}, the manifest says {recorded!r}")
        bm25 = bm25s.BM25.load(str(gen / BM25_DIR), mmap=True, show_progress=False)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, sqlite3.Error) as exc:
        raise IndexStoreError(f"The index in {index_dir} cannot be read ({exc}); {REBUILD_HINT}.") from None
    return IndexData(manifest, releases, AnnotationTable(db), chunks, index, stored, rows, bm25, gen)
