"""The index on disk: FAISS vectors, BM25, releases with their annotations and chunks.

Layout of an index folder:

    <index>/current -> gen-<n>      symlink, swapped atomically when a build finishes
    <index>/gen-<n>/manifest.json   settings, per-release hashes, file checksums
    <index>/gen-<n>/vectors.faiss   IndexIDMap2(IndexFlatIP) over unit chunk vectors, ids = chunk_id
    <index>/gen-<n>/releases.jsonl  one release a line: text, annotation, chunks
    <index>/gen-<n>/sentences.npy   unit sentence vectors, in releases.jsonl order
    <index>/gen-<n>/bm25/           bm25s index over the chunks (title + text)
    <index>/build.lock              held by the one build allowed at a time

A reader resolves `current` once and reads that generation only, so it sees a whole old
index or a whole new one, never half of each; a build killed midway leaves an orphan
`gen-*` folder (and perhaps a `.current-<pid>` link) that the next build removes.
Generation numbers only grow, so a newer index always has a larger `gen-<n>`.

For the crash tests, a build can be made to stop at a named point: with
QA_INDEX_TEST_PAUSE="<point>:<file>" it writes <file> on reaching <point> and waits
until <file> is deleted (see `checkpoint`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import config
from .annotate import Annotation
from .chunker import Chunk
from .errors import IndexStoreError
from .releases import Release

CURRENT = "current"
MANIFEST = "manifest.json"
FILES = ("vectors.faiss", "releases.jsonl", "sentences.npy")
BM25_DIR = "bm25"
BM25_SETTINGS = {"stopwords": "en", "stemmer": "english"}
REBUILD_HINT = "rebuild it with `python -m index build --full`"


@dataclass
class IndexData:
    """One generation of the index, in memory."""

    manifest: dict
    releases: dict[str, Release]
    annotations: dict[str, Annotation]
    chunks: dict[int, Chunk]  # by chunk_id
    vectors: object  # faiss.IndexIDMap2
    sentence_vectors: dict[str, np.ndarray]  # release_id -> rows aligned with its sentences
    bm25: object = None  # bm25s.BM25
    bm25_ids: list[int] = field(default_factory=list)  # chunk_id of each BM25 document
    path: Path | None = None

    @property
    def generation(self) -> str:
        return self.path.name if self.path else ""


def bm25_stemmer():
    import Stemmer

    return Stemmer.Stemmer(BM25_SETTINGS["stemmer"])


def bm25_tokenize(texts: list[str], stemmer=None) -> list[list[str]]:
    """Tokens as BM25 sees them (lower-cased, English stop words out, Snowball-stemmed)."""
    import bm25s

    return bm25s.tokenize(texts, stopwords=BM25_SETTINGS["stopwords"], stemmer=stemmer or bm25_stemmer(),
                          return_ids=False, show_progress=False)


def chunk_document(release: Release, chunk: Chunk) -> str:
    """What gets embedded and BM25-indexed for a chunk: the release title gives it context."""
    return f"{release.title}\n{chunk.text}"


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
        "spacy_model": config.SPACY_MODEL,
        "bm25": BM25_SETTINGS,
    }


def settings_mismatch(manifest: dict, expected: dict) -> str | None:
    """A sentence naming the first setting that differs, or None."""
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            return f"it was built with {key} = {have!r}, this version uses {want!r}"
    return None


def save(index_dir: Path, data: IndexData) -> Path:
    """Write `data` as a new generation and point `current` at it; returns the new folder."""
    import bm25s
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    gen = _new_generation(index_dir)
    order = list(data.releases)
    faiss.write_index(data.vectors, str(gen / "vectors.faiss"))
    checkpoint("save-files")
    with open(gen / "releases.jsonl", "w", encoding="utf-8") as f:
        for rid in order:
            chunks = sorted((c for c in data.chunks.values() if c.release_id == rid), key=lambda c: c.start)
            f.write(json.dumps({
                "release": data.releases[rid].to_dict(),
                "annotation": data.annotations[rid].to_dict(),
                "chunks": [c.to_dict() for c in chunks],
            }, ensure_ascii=False) + "\n")
    dim = data.vectors.d
    sent = [data.sentence_vectors[rid] for rid in order]
    np.save(gen / "sentences.npy", np.vstack(sent).astype(np.float32) if sent else np.zeros((0, dim), np.float32))

    ids = sorted(data.chunks)
    retriever = bm25s.BM25()
    docs = [chunk_document(data.releases[data.chunks[i].release_id], data.chunks[i]) for i in ids]
    retriever.index(bm25s.tokenize(docs, stopwords=BM25_SETTINGS["stopwords"], stemmer=bm25_stemmer(),
                                   show_progress=False), show_progress=False)
    retriever.save(str(gen / BM25_DIR), show_progress=False)
    (gen / BM25_DIR / "chunk_ids.json").write_text(json.dumps(ids))

    checksums = {name: file_sha256(gen / name) for name in FILES}
    checksums.update({f"{BM25_DIR}/{p.name}": file_sha256(p) for p in sorted((gen / BM25_DIR).iterdir())})
    manifest = dict(data.manifest, files=checksums, built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    with open(gen / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
    for p in [*gen.iterdir(), *(gen / BM25_DIR).iterdir()]:
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(gen)

    checkpoint("before-switch")
    tmp_link = index_dir / f".current-{os.getpid()}"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(gen.name, tmp_link)
    checkpoint("switch")
    os.replace(tmp_link, index_dir / CURRENT)  # the atomic switch
    _fsync_dir(index_dir)
    data.manifest, data.path = manifest, gen
    checkpoint("after-switch")
    prune(index_dir, keep=gen)
    return gen


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


def _verify_files(gen: Path, manifest: dict, index_dir: Path, checksums: bool = True) -> None:
    """IndexStoreError unless every file the manifest lists is there with its checksum."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise IndexStoreError(f"The index manifest in {gen} lists no files; {REBUILD_HINT}.")
    for name in [*FILES, *(k for k in files if k.startswith(BM25_DIR + "/"))]:
        path = gen / name
        if not path.is_file():
            raise IndexStoreError(f"The index in {index_dir} is incomplete ({name} is missing); {REBUILD_HINT}.")
        if checksums and files.get(name) != file_sha256(path):
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
    """Load the current generation, verifying checksums and settings; IndexStoreError otherwise.

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
    import faiss

    manifest = _manifest_at(gen, index_dir)
    if check_settings:
        why = settings_mismatch(manifest, expected_settings())
        if why:
            raise IndexStoreError(f"The index in {index_dir} was built with other settings ({why}); {REBUILD_HINT}.")
    _verify_files(gen, manifest, index_dir, checksums=verify)
    try:
        releases, annotations, chunks = {}, {}, {}
        with open(gen / "releases.jsonl", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                r = Release(**row["release"])
                releases[r.release_id] = r
                annotations[r.release_id] = Annotation.from_dict(row["annotation"])
                for c in row["chunks"]:
                    chunks[c["chunk_id"]] = Chunk(**c)
        vectors = faiss.read_index(str(gen / "vectors.faiss"))
        sent = np.load(gen / "sentences.npy")
        sentence_vectors, row = {}, 0
        for rid in releases:
            n = len(annotations[rid].sentences)
            sentence_vectors[rid] = sent[row:row + n]
            row += n
        if row != len(sent) or vectors.ntotal != len(chunks):
            raise ValueError("row counts disagree")
        if set(manifest.get("releases", releases)) != set(releases):
            raise ValueError("the releases differ from the manifest's")
        bm25 = bm25s.BM25.load(str(gen / BM25_DIR), show_progress=False)
        bm25_ids = json.loads((gen / BM25_DIR / "chunk_ids.json").read_text())
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexStoreError(f"The index in {index_dir} cannot be read ({exc}); {REBUILD_HINT}.") from None
    return IndexData(manifest, releases, annotations, chunks, vectors, sentence_vectors, bm25, bm25_ids, gen)
