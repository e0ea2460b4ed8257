"""Corpus -> index: embeds only what is new or changed, then swaps the new index in atomically.

How a build treats each release of the corpus, compared with the current index:
- same id (path + title) and same content hash: unchanged, its vectors and chunk ids are kept;
- same content as a release of the index under another id (a renamed, moved or copied file):
  its vectors are copied, nothing is embedded;
- anything else is split into sentences and chunks and embedded, by a `Processor`: in this process,
  `BUILD_BATCH_RELEASES` at a time, or on a Ray cluster (`index.distributed`).
Releases of the index that are not in the corpus any more leave it. The new generation is written
release by release in corpus order, then its FAISS index is built from the stored vectors (the type
chosen by size, or the one asked for and kept); a previous IVF index that still suits the size is
updated instead of trained again. When nothing changed at all, no new generation is written.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import config, generations, pipeline, store
from .errors import BuildLockedError, IndexStoreError
from .pipeline import Processed, Processor
from .progress import WAITING_STAGE, Progress
from .releases import ReadReport, read_corpus
from .types import Chunk, Release
from .writer import GenerationWriter, disk_full_message


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
                progress: Progress | None = None, lock_timeout: float = -1, processor: Processor | None = None,
                vector_kind: str | None = None) -> BuildReport:
    """Bring the index in line with the corpus.

    Unchanged releases keep their vectors; a release whose content moved to another path
    is recognised by its hash and not re-embedded. `lock_timeout` < 0 waits for another
    build to finish; 0 fails at once with BuildLockedError. A corpus that is missing or
    has no readable release raises CorpusError and leaves the index as it was.
    `processor` splits and embeds the releases that need it (default: in this process, in
    batches; `index.distributed.ray_processor` spreads it over a Ray cluster). `vector_kind`
    forces a FAISS index type (see `index.vectors`), kept by later builds until "auto" asks
    for the type chosen by size again.
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
        report = _build_locked(read, index_path, full, progress, processor, vector_kind)
    except OSError as exc:
        why = disk_full_message(exc, index_path)
        if why is None:
            raise
        raise IndexStoreError(why) from None
    finally:
        lock.release()
    report.files, report.skipped = read.files, read.skipped
    report.seconds = time.perf_counter() - t0
    return report


def local_processor(batch: int = config.BUILD_BATCH_RELEASES) -> Processor:
    """Split and embed releases in this process, `batch` releases at a time."""
    def run(releases: list[Release]) -> Iterator[list[Processed]]:
        for i in range(0, len(releases), batch):
            yield pipeline.process(releases[i:i + batch])
    return run


def _previous(index_dir: Path, full: bool) -> tuple[store.IndexData | None, str]:
    """The index to update in place, or None (with the reason) when a full build is needed."""
    if full:
        return None, ""
    if generations.current_generation(index_dir) is None:
        return None, ""
    try:
        return store.load(index_dir), ""
    except IndexStoreError as exc:
        return None, f"The previous index could not be reused, so everything was re-embedded: {exc}"


def _vector_kind(asked: str | None, index_path: Path) -> tuple[str | None, bool]:
    """The FAISS index kind to build (None: by size) and whether it was forced.

    A kind asked for is kept by later builds that ask for none; "auto" goes back to choosing by size.
    """
    if asked == "auto":
        return None, False
    if asked:
        return asked, True
    try:
        previous = store.read_manifest(index_path).get("vector_index", {})
    except IndexStoreError:
        return None, False
    return (previous.get("kind"), True) if previous.get("forced") else (None, False)


def _unchanged(read: ReadReport, index_path: Path, settings: dict, vector_kind: str | None) -> dict | None:
    """The current manifest when the index already holds exactly this corpus, intact; else None."""
    from . import vectors

    try:
        manifest = store.read_manifest(index_path)
    except IndexStoreError:
        return None
    if store.settings_mismatch(manifest, settings) or manifest.get("corpus_dir") != read.root:
        return None
    want = vector_kind or vectors.choose_kind(int(manifest.get("chunks", 0)))
    if manifest.get("vector_index", {}).get("kind") != want:  # another FAISS type asked for, or due by size
        return None
    have = [(rid, v["sha256"]) for rid, v in store.release_hashes(index_path).items()]
    if have != [(r.release_id, r.sha256) for r in read.releases]:
        return None
    # every file read is recorded, so that freshness compares like with like: a release file edited without
    # changing its releases, or a file added that cannot be read, writes a generation that records it (no
    # vector is embedded for it) instead of leaving the index stale for ever
    files = store.corpus_files(index_path)
    if files is None or {f.path: f.sha256 for f in files.values()} != {f.path: f.sha256 for f in read.read}:
        return None
    try:
        return store.verify_index(index_path)  # a damaged index is rebuilt, not kept
    except IndexStoreError:
        return None


def _classify(prev_rel: dict[str, dict], new: dict[str, Release]):
    """Split the corpus into kept (same id and content), reused (same content, other id) and to-embed."""
    kept = {rid for rid, r in new.items() if rid in prev_rel and prev_rel[rid]["sha256"] == r.sha256}
    by_hash: dict[str, str] = {}
    for rid, v in prev_rel.items():
        by_hash.setdefault(v["sha256"], rid)
    reused: dict[str, str] = {}  # new release_id -> previous release_id with the same content
    todo: list[Release] = []
    for rid, r in new.items():
        if rid in kept:
            continue
        if r.sha256 in by_hash:
            reused[rid] = by_hash[r.sha256]
        else:
            todo.append(r)
    return kept, reused, todo


def _count(old: dict[str, dict], new: dict[str, Release], report: BuildReport) -> None:
    """Fill in added/changed/removed/unchanged, comparing the corpus with the previous index.

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


def _build_locked(read: ReadReport, index_path: Path, full: bool, progress: Progress | None,
                  processor: Processor | None, vector_kind: str | None) -> BuildReport:
    from . import embedder

    from . import converters

    generations.remove_orphans(index_path)
    # How files were read is part of the index: another converter version writes a new generation (releases
    # whose text came out the same keep their vectors); the index itself still loads without it.
    settings = dict(store.expected_settings(), converters=converters.settings())
    new = {r.release_id: r for r in read.releases}
    vector_kind, forced = _vector_kind(vector_kind, index_path)
    if not full:
        manifest = _unchanged(read, index_path, settings, vector_kind)
        if manifest is not None:
            gen = generations.current_generation(index_path)
            return BuildReport(unchanged=len(new), releases=len(new), chunks=int(manifest["chunks"]),
                               index_dir=str(index_path), written=False, generation=gen.name if gen else "")

    prev, note = _previous(index_path, full)
    if prev is not None and prev.manifest.get("converters") != settings["converters"]:
        note = ("The index was built with another version of the file converters (index/converters), so every "
                "file was read again; releases whose text came out the same kept their vectors.")
    report = BuildReport(full=prev is None, note=note, index_dir=str(index_path))
    # counted against what was indexed, even when everything is re-embedded
    old = prev.releases.hashes() if prev else store.release_hashes(index_path)
    _count(old, new, report)
    kept, reused, todo = _classify(old if prev else {}, new)
    report.reused = len(reused)
    next_id = int(prev.manifest.get("next_chunk_id", 0)) if prev else 0

    processor = processor or local_processor()
    stream = (p for batch in processor(todo) for p in batch) if todo else iter(())
    done = 0
    if progress and todo:
        progress(0, len(todo), "embedding")
    with GenerationWriter(index_path, embedder.dimension(), vector_kind, forced) as writer:
        writer.add_files(read.read)
        for rid, r in new.items():
            if rid in kept:
                writer.add(r, prev.annotations[rid], *prev.chunks_and_vectors(rid))
            elif rid in reused:  # identical content under another id: fresh chunk ids, the old vectors
                was = reused[rid]
                olds, vectors = prev.chunks_and_vectors(was)
                chunks = [Chunk(next_id + i, rid, c.start, c.end, c.text, c.n_tokens) for i, c in enumerate(olds)]
                next_id += len(chunks)
                writer.add(r, prev.annotations[was], chunks, vectors)
            else:
                p = next(stream, None)
                if p is None or p.release.release_id != rid:
                    raise RuntimeError(f"the processor returned releases out of order at {r.path}")
                p = pipeline.renumber(p, next_id)
                next_id += len(p.chunks)
                writer.add(r, p.annotation, p.chunks, p.vectors)
                report.chunks_embedded += len(p.chunks)
                done += 1
                if progress:
                    progress(done, len(todo), "embedding")
                generations.checkpoint("embedding")
        if progress:
            progress(1, 1, "saving")
        gen = writer.finish(dict(settings, next_chunk_id=next_id, corpus_dir=read.root), previous=prev)
    report.releases, report.chunks, report.generation = writer.n_releases, writer.n_chunks, gen.name
    return report

