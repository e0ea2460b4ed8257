"""Is the index stale? The files a build read, recorded with the index, against the corpus folder now.

A build records every release file it read (and a fetched page's sidecar) with its size, mtime and
sha256 (`index.store.corpus_files`). `corpus_changed` compares that record with the folder without
converting anything: a stat per file, and a hash only for a file whose size or mtime moved.
"""
from __future__ import annotations

from pathlib import Path

from . import config, store
from .converters import SIDECAR_SUFFIX, is_sidecar, known
from .files import file_sha256
from .types import CorpusFile


def tracked_files(root: Path) -> list[Path]:
    """The files of a corpus folder a build reads: release files of a known format and their sidecars, hidden
    ones left out, in a stable order."""
    out = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        if known(p) and not is_sidecar(p.name):
            out.append(p)
        elif is_sidecar(p.name) and known(p.name[:-len(SIDECAR_SUFFIX)]):
            out.append(p)
    return out


def corpus_file(root: Path, path: Path) -> CorpusFile:
    """What is recorded of one corpus file (its bytes are read once, for the hash)."""
    st = path.stat()
    return CorpusFile(path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns, file_sha256(path))


def snapshot(root: Path) -> list[CorpusFile]:
    """The record of every tracked file of a corpus folder (a file removed meanwhile left out)."""
    out = []
    for path in tracked_files(root):
        try:
            out.append(corpus_file(root, path))
        except FileNotFoundError:
            continue
    return out


def _differs(path: Path, was: CorpusFile) -> bool:
    st = path.stat()
    if (st.st_size, st.st_mtime_ns) == (was.size, was.mtime_ns):
        return False
    return st.st_size != was.size or file_sha256(path) != was.sha256


def corpus_changed(corpus_dir: str | Path | None = None, index_dir: str | Path | None = None) -> bool:
    """True when the corpus folder no longer holds the files the current index was built from (a file added,
    removed or edited). Reads no file unless its size or mtime changed; converts none."""
    index_path = config.index_dir(index_dir)
    store.read_manifest(index_path)  # IndexStoreError when there is no index
    recorded = store.corpus_files(index_path)
    root = config.corpus_dir(corpus_dir)
    if recorded is None or not root.is_dir():
        return True
    seen = 0
    try:
        for path in tracked_files(root):
            was = recorded.get(path.relative_to(root).as_posix())
            if was is None or _differs(path, was):
                return True
            seen += 1
    except OSError:  # a file removed while looking
        return True
    return seen != len(recorded)
