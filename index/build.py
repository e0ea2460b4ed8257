"""Corpus -> index: embeds only what is new or changed, then swaps the new index in atomically.

How a build treats each release of the corpus, compared with the current index:
- same id (path + title) and same content hash: unchanged, its vectors and chunk ids are kept;
- same content as a release of the index under another id (a renamed, moved or copied file):
  its vectors are copied, nothing is embedded;
- anything else is annotated, chunked and embedded.
Releases of the index that are not in the corpus any more leave it (their FAISS ids are removed).
When nothing changed at all, no new generation is written.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import config, store
from .annotate import Annotation, annotate
from .chunker import Chunk, chunk_release
from .errors import BuildLockedError, IndexStoreError
from .releases import ReadReport, Release, read_corpus

Progress = Callable[[int, int, str], None]  # (done, total, stage)
#: The progress stage reported while another build holds the lock.
WAITING_STAGE = "waiting for another build"


@dataclass
class BuildReport:
    """What a build did.

    Every release of the previous index is counted once in unchanged + changed + removed,
    every release of the new one once in unchanged + changed + added. A release renamed
    or moved to another file counts as removed and added, with nothing embedded (`reused`).
    """

    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    releases: int = 0
    chunks: int = 0
    files: int = 0
    full: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""  # why a full rebuild happened, if it was not asked for
    index_dir: str = ""
    reused: int = 0  # releases whose vectors were copied from identical content under another id
    written: bool = True  # False when nothing changed and the current generation was kept
    generation: str = ""  # the generation folder the index is at after the build

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        moved = f" ({self.reused} renamed or moved, not re-embedded)" if self.reused else ""
        lines = [
            f"Read {self.releases} releases from {self.files} files; "
            f"{self.added} added, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged{moved}.",
        ]
        if self.written:
            lines.append(f"Embedded {self.chunks_embedded} chunks ({self.chunks} in the index) in {self.seconds:.1f} s"
                         f"{' (full rebuild)' if self.full else ''}; index: {self.index_dir}")
        else:
            lines.append(f"Nothing changed; the index ({self.chunks} chunks) is up to date: {self.index_dir}")
        if self.note:
            lines.append(self.note)
        lines += [f"Skipped {path}: {why}" for path, why in self.skipped]
        return "\n".join(lines)


def lock_for(index_dir: Path, timeout: float):
    """The build lock of an index folder (a file lock: one build at a time)."""
    from filelock import FileLock

    index_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(index_dir / "build.lock"), timeout=timeout)


def _acquire(lock, timeout: float, progress: Progress | None) -> bool:
    """Take the build lock; True when another build held it and this one had to wait."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
        return False
    except Timeout:
        if timeout == 0:
            raise
    if progress:
        progress(0, 0, WAITING_STAGE)
    lock.acquire(timeout=timeout)
    return True


def build_index(corpus_dir: str | Path | None = None, index_dir: str | Path | None = None, full: bool = False,
                progress: Progress | None = None, lock_timeout: float = -1) -> BuildReport:
    """Bring the index in line with the corpus.

    Unchanged releases keep their vectors; a release whose content moved to another path
    is recognised by its hash and not re-embedded. `lock_timeout` < 0 waits for another
    build to finish; 0 fails at once with BuildLockedError. A corpus that is missing or
    has no readable release raises CorpusError and leaves the index as it was.
    """
    from filelock import Timeout

    t0 = time.perf_counter()
    corpus = config.corpus_dir(corpus_dir)
    index_path = config.index_dir(index_dir)
    read = read_corpus(corpus)  # raises CorpusError before the index is touched
    lock = lock_for(index_path, lock_timeout)
    try:
        waited = _acquire(lock, lock_timeout, progress)
    except Timeout:
        raise BuildLockedError(
            f"Another build of {index_path} is running; wait for it to finish and try again.") from None
    try:
        if waited:  # the corpus may have changed while the other build ran
            read = read_corpus(corpus)
        report = _build_locked(read, index_path, full, progress)
    finally:
        lock.release()
    report.files, report.skipped = read.files, read.skipped
    report.seconds = time.perf_counter() - t0
    return report


def _previous(index_dir: Path, full: bool) -> tuple[store.IndexData | None, str]:
    """The index to update in place, or None (with the reason) when a full build is needed."""
    if full:
        return None, ""
    if store.current_generation(index_dir) is None:
        return None, ""
    try:
        return store.load(index_dir), ""
    except IndexStoreError as exc:
        return None, f"The previous index could not be reused, so everything was re-embedded: {exc}"


def _unchanged(read: ReadReport, index_path: Path, settings: dict) -> dict | None:
    """The current manifest when the index already holds exactly this corpus, intact; else None."""
    try:
        manifest = store.read_manifest(index_path)
    except IndexStoreError:
        return None
    if store.settings_mismatch(manifest, settings) or manifest.get("corpus_dir") != read.root:
        return None
    have = [(rid, v.get("sha256")) for rid, v in manifest.get("releases", {}).items()]
    if have != [(r.release_id, r.sha256) for r in read.releases] or "chunks" not in manifest:
        return None
    try:
        return store.verify_index(index_path)  # a damaged index is rebuilt, not kept
    except IndexStoreError:
        return None


def _classify(prev: store.IndexData | None, new: dict[str, Release]):
    """Split the corpus into kept (same id and content), reused (same content, other id) and to-embed."""
    prev_rel = prev.releases if prev else {}
    kept = [rid for rid, r in new.items() if rid in prev_rel and prev_rel[rid].sha256 == r.sha256]
    kept_set = set(kept)
    by_hash: dict[str, str] = {}
    for rid, r in prev_rel.items():
        by_hash.setdefault(r.sha256, rid)
    reused: dict[str, str] = {}  # new release_id -> previous release_id with the same content
    todo: list[Release] = []
    for rid, r in new.items():
        if rid in kept_set:
            continue
        if r.sha256 in by_hash:
            reused[rid] = by_hash[r.sha256]
        else:
            todo.append(r)
    return kept, reused, todo


def _count(old: dict[str, dict], new: dict[str, Release], report: BuildReport) -> None:
    """Fill in added/changed/removed/unchanged, comparing the corpus with the previous manifest.

    An id present before and now is unchanged or changed; new ids in a file that lost as many
    ids as it gained (an edited title) are changed too; the rest is added or removed.
    """
    appeared = [rid for rid in new if rid not in old]
    gone = [rid for rid in old if rid not in new]
    by_path_new, by_path_old = defaultdict(int), defaultdict(int)
    for rid in appeared:
        by_path_new[new[rid].path] += 1
    for rid in gone:
        by_path_old[old[rid].get("path")] += 1
    paired = sum(n for path, n in by_path_new.items() if by_path_old.get(path) == n)
    same = [rid for rid in new if rid in old]
    report.unchanged = sum(1 for rid in same if old[rid].get("sha256") == new[rid].sha256)
    report.changed = len(same) - report.unchanged + paired
    report.added = len(appeared) - paired
    report.removed = len(gone) - paired


def _build_locked(read: ReadReport, index_path: Path, full: bool, progress: Progress | None) -> BuildReport:
    import faiss

    from . import embedder

    store.remove_orphans(index_path)
    settings = store.expected_settings()
    new = {r.release_id: r for r in read.releases}
    if not full:
        manifest = _unchanged(read, index_path, settings)
        if manifest is not None:
            gen = store.current_generation(index_path)
            return BuildReport(unchanged=len(new), releases=len(new), chunks=int(manifest["chunks"]),
                               index_dir=str(index_path), written=False, generation=gen.name if gen else "")

    prev, note = _previous(index_path, full)
    report = BuildReport(full=prev is None, note=note, index_dir=str(index_path))
    try:  # counted against what was indexed, even when everything is re-embedded
        old = prev.manifest["releases"] if prev else store.read_manifest(index_path).get("releases", {})
    except (IndexStoreError, KeyError, AttributeError):
        old = {}
    _count(old if isinstance(old, dict) else {}, new, report)
    kept, reused, todo = _classify(prev, new)
    report.reused = len(reused)

    dim = embedder.dimension()
    vectors = prev.vectors if prev else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    next_id = int(prev.manifest.get("next_chunk_id", 0)) if prev else 0
    releases: dict[str, Release] = {}
    annotations: dict[str, Annotation] = {}
    chunks: dict[int, Chunk] = {}
    sentence_vectors: dict[str, np.ndarray] = {}

    old_chunks: dict[str, list[Chunk]] = defaultdict(list)
    if prev:
        for c in sorted(prev.chunks.values(), key=lambda c: c.chunk_id):
            old_chunks[c.release_id].append(c)
    for rid in kept:
        releases[rid], annotations[rid] = new[rid], prev.annotations[rid]
        sentence_vectors[rid] = prev.sentence_vectors[rid]
        chunks.update({c.chunk_id: c for c in old_chunks[rid]})
    # Copies of identical content take fresh chunk ids; their vectors come out of the old index.
    copied_ids, copied_vecs = [], []
    for rid, old_id in reused.items():
        releases[rid], annotations[rid] = new[rid], prev.annotations[old_id]
        sentence_vectors[rid] = prev.sentence_vectors[old_id]
        olds = old_chunks[old_id]
        if olds:
            copied_vecs.append(vectors.reconstruct_batch(np.asarray([c.chunk_id for c in olds], dtype=np.int64)))
        for c in olds:
            chunks[next_id] = Chunk(next_id, rid, c.start, c.end, c.text, c.n_tokens)
            copied_ids.append(next_id)
            next_id += 1
    if prev:
        kept_set = set(kept)
        dropped = [c.chunk_id for c in prev.chunks.values() if c.release_id not in kept_set]
        if dropped:
            vectors.remove_ids(np.asarray(dropped, dtype=np.int64))
    if copied_ids:
        vectors.add_with_ids(np.vstack(copied_vecs).astype(np.float32), np.asarray(copied_ids, dtype=np.int64))

    if todo:
        total = len(todo)
        if progress:
            progress(0, total, "annotating")
        notes = annotate([r.text for r in todo])
        new_chunks: list[Chunk] = []
        for r, a in zip(todo, notes):
            cs = chunk_release(r.release_id, r.text, a.sentences, config.CHUNK_SETTINGS, first_id=next_id,
                               fits=lambda t, title=r.title: embedder.fits_window(f"{title}\n{t}"))
            next_id += len(cs)
            new_chunks.extend(cs)
            releases[r.release_id], annotations[r.release_id] = r, a
        texts = [store.chunk_document(releases[c.release_id], c) for c in new_chunks]
        sents = [r.text[s:e] for r, a in zip(todo, notes) for s, e in a.sentences]
        work = len(texts) + len(sents)
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], work, "embedding")
            store.checkpoint("embedding")

        chunk_vecs = embedder.encode(texts, progress=tick)
        sent_vecs = embedder.encode(sents, progress=tick)
        vectors.add_with_ids(chunk_vecs, np.asarray([c.chunk_id for c in new_chunks], dtype=np.int64))
        chunks.update({c.chunk_id: c for c in new_chunks})
        row = 0
        for r, a in zip(todo, notes):
            sentence_vectors[r.release_id] = sent_vecs[row:row + len(a.sentences)]
            row += len(a.sentences)
        report.chunks_embedded = len(new_chunks)

    # Keep the corpus order, so that a full and an incremental build store the same thing.
    order = [rid for rid in new if rid in releases]
    data = store.IndexData(
        manifest=dict(settings, next_chunk_id=next_id, chunks=len(chunks), corpus_dir=read.root,
                      releases={rid: {"sha256": releases[rid].sha256, "title": releases[rid].title,
                                      "path": releases[rid].path} for rid in order}),
        releases={rid: releases[rid] for rid in order},
        annotations={rid: annotations[rid] for rid in order},
        chunks=chunks, vectors=vectors,
        sentence_vectors={rid: sentence_vectors[rid] for rid in order},
    )
    if progress:
        progress(1, 1, "saving")
    gen = store.save(index_path, data)
    report.releases, report.chunks, report.generation = len(order), len(chunks), gen.name
    return report


def corpus_changed(corpus_dir: str | Path | None = None, index_dir: str | Path | None = None) -> bool:
    """True when the corpus no longer matches the index's manifest (releases added, edited or removed)."""
    manifest = store.read_manifest(config.index_dir(index_dir))
    try:
        read = read_corpus(corpus_dir)
    except Exception:
        return True
    have = {rid: v["sha256"] for rid, v in manifest.get("releases", {}).items()}
    return have != {r.release_id: r.sha256 for r in read.releases}
