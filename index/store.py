"""The index on disk: releases and chunks in SQLite, chunk vectors, a FAISS index and BM25.

Layout of an index folder:

    <index>/current -> gen-<n>      symlink, swapped atomically when a build finishes
    <index>/gen-<n>/manifest.json   settings, counts, the FAISS index type, every file's size and checksum
    <index>/gen-<n>/store.sqlite    releases (text, title, date, sentences) and chunks (offsets), in corpus order
    <index>/gen-<n>/vectors.f32     unit chunk vectors, float32, one row per chunk in corpus order
    <index>/gen-<n>/rows.npy        per chunk row: chunk id, release position, release day (for date filters)
    <index>/gen-<n>/vectors.faiss   FAISS index over the vectors, ids = chunk ids (type by size: see index.vectors)
    <index>/gen-<n>/bm25/           bm25s index over the chunks (title + text), rows as in rows.npy
    <index>/build.lock              held by the one build allowed at a time

A generation is written release by release (`GenerationWriter`), so a build's memory does not grow with
the corpus' text; a loaded generation (`IndexData`) memory-maps the vectors, the rows and BM25 and reads
releases and chunks from SQLite when asked, so neither does a reader's.

A reader resolves `current` once and reads that generation only, so it sees a whole old index or a
whole new one, never half of each; a build killed midway leaves an orphan `gen-*` folder (and perhaps a
`.current-<pid>` link) that the next build removes. Generation numbers only grow.

For the crash tests, a build can be made to stop at a named point: with
QA_INDEX_TEST_PAUSE="<point>:<file>" it writes <file> on reaching <point> and waits
until <file> is deleted (see `checkpoint`).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import config
from .errors import IndexStoreError
from .pipeline import chunk_document
from .types import Annotation, Chunk, Release

CURRENT = "current"
MANIFEST = "manifest.json"
DB, VECTORS, ROWS, FAISS_FILE = "store.sqlite", "vectors.f32", "rows.npy", "vectors.faiss"
FILES = (DB, VECTORS, ROWS, FAISS_FILE)
BM25_DIR = "bm25"
BM25_SETTINGS = {"stopwords": "en", "stemmer": "english"}
REBUILD_HINT = "rebuild it with `python -m index build --full`"
#: one row of rows.npy; `day` is the release's date as a proleptic ordinal (date.toordinal), -1 when undated
ROW_DTYPE = np.dtype([("chunk_id", "<i8"), ("release_pos", "<i4"), ("day", "<i4")])

__all__ = ["IndexData", "GenerationWriter", "load", "read_manifest", "verify_index", "chunk_document"]


def day_number(iso: str | None) -> int:
    """An ISO day as an ordinal (comparable with <, stored in rows.npy); -1 for None."""
    return date.fromisoformat(iso).toordinal() if iso else -1


def bm25_stemmer():
    import Stemmer

    return Stemmer.Stemmer(BM25_SETTINGS["stemmer"])


def bm25_tokenize(texts: list[str], stemmer=None) -> list[list[str]]:
    """Tokens as BM25 sees them (lower-cased, English stop words out, Snowball-stemmed)."""
    import bm25s

    return bm25s.tokenize(texts, stopwords=BM25_SETTINGS["stopwords"], stemmer=stemmer or bm25_stemmer(),
                          return_ids=False, show_progress=False)


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


PAUSE_ENV = "QA_INDEX_TEST_PAUSE"
_paused: set[str] = set()


def checkpoint(point: str) -> None:
    """Test hook: pause at `point` while $QA_INDEX_TEST_PAUSE = "<point>:<file>" and <file> exists.

    Reaching the point writes <file>; the build goes on once a test deletes it (or kills the process).
    """
    spec = os.environ.get(PAUSE_ENV, "")
    name, _, flag = spec.partition(":")
    if not flag or name != point or point in _paused:
        return
    _paused.add(point)  # once per process: a point reached again (each embedding batch) goes on
    Path(flag).write_text(str(os.getpid()))
    deadline = time.monotonic() + 600
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.02)


# -- generations ------------------------------------------------------------------------------------------

def _gen_number(path: Path) -> int:
    try:
        return int(path.name.split("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def generations(index_dir: Path) -> list[Path]:
    """The `gen-<n>` folders of an index, oldest first."""
    gens = [p for p in Path(index_dir).glob("gen-*") if p.is_dir() and _gen_number(p) >= 0]
    return sorted(gens, key=_gen_number)


def _new_generation(index_dir: Path) -> Path:
    """A fresh generation folder, numbered above every existing one (clock steps back or not)."""
    top = max((_gen_number(g) for g in generations(index_dir)), default=0)
    n = max(time.time_ns(), top + 1)
    while True:
        gen = index_dir / f"gen-{n}"
        try:
            gen.mkdir()
            return gen
        except FileExistsError:
            n += 1


def current_generation(index_dir: Path) -> Path | None:
    """The generation folder `current` points to, or None when there is no index yet."""
    link = Path(index_dir) / CURRENT
    try:
        target = os.readlink(link)
    except OSError:
        return None
    return Path(index_dir) / target


def expected_settings() -> dict:
    """The settings an index must have been built with to be used as is."""
    from .embedder import dimension

    return {
        "format_version": config.FORMAT_VERSION,
        "model": config.MODEL_NAME,
        "dim": dimension(),
        "chunking": config.CHUNK_SETTINGS.to_dict(),
        "sentences": config.SENTENCE_SPLITTER,
        "bm25": BM25_SETTINGS,
    }


def settings_mismatch(manifest: dict, expected: dict) -> str | None:
    """A sentence naming the first setting that differs, or None."""
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            return f"it was built with {key} = {have!r}, this version uses {want!r}"
    return None


def _switch(index_dir: Path, gen: Path) -> None:
    """Point `current` at `gen` atomically, then drop the generations no reader can need."""
    checkpoint("before-switch")
    tmp_link = index_dir / f".current-{os.getpid()}"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(gen.name, tmp_link)
    checkpoint("switch")
    os.replace(tmp_link, index_dir / CURRENT)  # the atomic switch
    _fsync_dir(index_dir)
    checkpoint("after-switch")
    prune(index_dir, keep=gen)


def prune(index_dir: Path, keep: Path) -> None:
    """Remove generations older than `keep`, except the one just before it.

    The one before is what `current` pointed to until now: a reader that resolved it a moment
    ago may still be loading it (and `load` retries on the new one if it is gone meanwhile).
    """
    older = [g for g in generations(index_dir) if _gen_number(g) < _gen_number(keep)]
    for g in older[:-1]:
        shutil.rmtree(g, ignore_errors=True)


def remove_orphans(index_dir: Path) -> None:
    """Clean up after builds killed midway (call it holding the build lock).

    Removes generations newer than `current` (never switched to), stray `.current-<pid>`
    links, and generations older than the one before `current`.
    """
    index_dir = Path(index_dir)
    cur = current_generation(index_dir)
    if cur is not None and not cur.is_dir():
        cur = None  # a dangling link: nothing to keep
    for g in generations(index_dir):
        if cur is None or _gen_number(g) > _gen_number(cur):
            shutil.rmtree(g, ignore_errors=True)
    for link in index_dir.glob(".current-*"):
        if link.is_symlink() or link.is_file():
            link.unlink(missing_ok=True)
    if cur is not None:
        prune(index_dir, keep=cur)


# -- writing ----------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE releases (pos INTEGER PRIMARY KEY, release_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
                       text TEXT NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL, date TEXT,
                       sha256 TEXT NOT NULL, sentences TEXT NOT NULL, url TEXT NOT NULL DEFAULT '');
CREATE TABLE chunks (chunk_id INTEGER PRIMARY KEY, row INTEGER NOT NULL, release_pos INTEGER NOT NULL,
                     start INTEGER NOT NULL, "end" INTEGER NOT NULL, n_tokens INTEGER NOT NULL);
"""


class _TokenRows(Sequence):
    """The BM25 token ids of every chunk, kept as int32 arrays rather than lists of Python ints (a tenth of
    the memory at a million chunks); bm25s reads them row by row as lists."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.lengths: list[int] = []
        self.flat, self.offsets = np.zeros(0, np.int32), np.zeros(1, np.int64)

    def extend(self, rows: list[list[int]]) -> None:
        self.parts.append(np.fromiter((t for row in rows for t in row), np.int32))
        self.lengths += [len(row) for row in rows]

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
        from bm25s.tokenization import Tokenizer

        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.dim, self.vector_kind, self.forced = dim, vector_kind, forced
        self.gen = _new_generation(self.index_dir)
        self.db = sqlite3.connect(self.gen / DB)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        self.vec_file = open(self.gen / VECTORS, "wb")
        self.tokenizer = Tokenizer(stopwords=BM25_SETTINGS["stopwords"], stemmer=bm25_stemmer())
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

    def finish(self, manifest: dict, previous: "IndexData | None" = None) -> Path:
        """Write the FAISS and BM25 indexes, checksums and manifest, then switch `current` here.

        An IVF index of the `previous` generation that still suits the new size is updated (its lists
        lose the chunks that left and gain the new ones) instead of trained again.
        """
        import bm25s
        import faiss

        from . import vectors as vector_index

        gen = self.gen
        self.vec_file.close()
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
        stored = _vectors_at(gen, len(rows), self.dim)
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
        _fsync_dir(gen / BM25_DIR)
        _fsync_dir(gen)
        _switch(self.index_dir, gen)
        return gen

    def abort(self) -> None:
        """Remove the half-written generation (a build that failed leaves the index as it was)."""
        for closing in (self.vec_file.close, self.db.close):
            try:
                closing()
            except Exception:
                pass
        shutil.rmtree(self.gen, ignore_errors=True)


def _updated_ivf(previous: "IndexData | None", stored: np.ndarray, ids: np.ndarray, kind: str | None):
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


# -- reading ----------------------------------------------------------------------------------------------

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


_RELEASE_COLUMNS = "release_id, title, text, path, source, date, sha256"


def _release_columns(db: _Database) -> str:
    """The Release fields' columns; an index written before releases had a URL reads it as ''."""
    names = {row[1] for row in db.all("PRAGMA table_info(releases)")}
    return _RELEASE_COLUMNS + (", url" if "url" in names else ", '' AS url")


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

    def __init__(self, db: _Database):
        super().__init__(db)
        self.columns = _release_columns(db)

    def _fetch(self, release_id: str) -> Release | None:
        row = self.db.one(f"SELECT {self.columns} FROM releases WHERE release_id = ?", (release_id,))
        return Release(*row) if row else None

    def values(self):
        return [Release(*row) for row in self.db.all(f"SELECT {self.columns} FROM releases ORDER BY pos")]

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


def _vectors_at(gen: Path, n: int, dim: int) -> np.ndarray:
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


def release_hashes(index_dir: Path) -> dict[str, dict]:
    """release_id -> {sha256, title, path} of the current generation, in corpus order; {} when unreadable."""
    gen = current_generation(Path(index_dir))
    if gen is None or not (gen / DB).is_file():
        return {}
    try:
        db = _Database(gen / DB)
        try:
            return ReleaseTable(db).hashes()
        finally:
            db.conn.close()
    except sqlite3.Error:
        return {}


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
        stored = _vectors_at(gen, n_chunks, int(manifest["dim"]))
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
