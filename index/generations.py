"""The generations of an index folder: their layout, which one is current, switching and pruning.

    <index>/current -> gen-<n>      symlink, swapped atomically when a build finishes
    <index>/gen-<n>/manifest.json   settings, counts, the FAISS index type, every file's size and checksum
    <index>/gen-<n>/store.sqlite    releases, chunks, BM25 document frequencies, the corpus files read
    <index>/gen-<n>/vectors.f32     unit chunk vectors, float32, one row per chunk in corpus order
    <index>/gen-<n>/rows.npy        per chunk row: chunk id, release position, release day (for date filters)
    <index>/gen-<n>/vectors.faiss   FAISS index over the vectors, ids = chunk ids (type by size: see index.vectors)
    <index>/gen-<n>/bm25/           bm25s index over the chunks (title + text), rows as in rows.npy
    <index>/build.lock              held by the one build allowed at a time

A reader resolves `current` once and reads that generation only, so it sees a whole old index or a whole
new one; a build killed midway leaves an orphan `gen-*` folder (and perhaps a `.current-<pid>` link) that
the next build removes. Generation numbers only grow.

For the crash tests, a build can be made to stop at a named point: with
QA_INDEX_TEST_PAUSE="<point>:<file>" it writes <file> on reaching <point> and waits
until <file> is deleted (see `checkpoint`).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .files import fsync_dir

CURRENT = "current"
MANIFEST = "manifest.json"
DB, VECTORS, ROWS, FAISS_FILE = "store.sqlite", "vectors.f32", "rows.npy", "vectors.faiss"
FILES = (DB, VECTORS, ROWS, FAISS_FILE)
BM25_DIR = "bm25"
REBUILD_HINT = "rebuild it with `python -m index build --full`"

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


def new_generation(index_dir: Path) -> Path:
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


def switch(index_dir: Path, gen: Path) -> None:
    """Point `current` at `gen` atomically, then drop the generations no reader can need."""
    checkpoint("before-switch")
    tmp_link = index_dir / f".current-{os.getpid()}"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(gen.name, tmp_link)
    checkpoint("switch")
    os.replace(tmp_link, index_dir / CURRENT)  # the atomic switch
    fsync_dir(index_dir)
    checkpoint("after-switch")
    prune(index_dir, keep=gen)


def prune(index_dir: Path, keep: Path) -> None:
    """Remove generations older than `keep`, except the one just before it.

    The one before is what `current` pointed to until now: a reader that resolved it a moment
    ago may still be loading it (and `store.load` retries on the new one if it is gone meanwhile).
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
