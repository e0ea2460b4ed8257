"""Add uploaded release files to the corpus folder, refusing anything that does not belong there.

Every file is checked before any is copied; a refused file changes nothing and comes back
with a one-sentence reason. Accepted files are written atomically (a hidden temporary file,
then a hard link under the final name, which never replaces an existing file). Nothing is
re-indexed here: the caller runs `index.build.build_index` afterwards (or a watcher does).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .errors import CorpusError
from .files import fsync_dir, size_text, write_atomic
from .releases import normalised_text, read_corpus
from .types import Release


def _read_upload(data: bytes, name: str) -> tuple[list[Release], list[tuple[str, str]]]:
    """The releases of an uploaded file, read by its format's converter (the worker and its limits for
    anything but .txt/.md), under the name it will have in the corpus."""
    import tempfile

    from .converters import convert_with_skips

    with tempfile.TemporaryDirectory(prefix="qa-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return convert_with_skips(path, name)


@dataclass
class IngestReport:
    """Names of the files copied into the corpus, and (name, reason) for those refused."""

    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = []
        if self.accepted:
            lines.append(f"Added {len(self.accepted)} file{'s' if len(self.accepted) != 1 else ''} to the corpus: "
                         + ", ".join(self.accepted) + ".")
        lines += [f"Refused {name}: {why}" for name, why in self.refused]
        return "\n".join(lines) or "No files were given."


def name_problem(name: str, corpus: Path) -> str | None:
    """Why `name` cannot be a file of the corpus folder, or None when it can."""
    if not name or not name.strip():
        return "the file has no name; upload it under a plain file name such as release.txt."
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        return ("the name would place the file outside the corpus folder; "
                "upload it under a plain file name such as release.txt.")
    if any(ord(ch) < 32 for ch in name):
        return "the name holds control characters; rename it to a plain file name such as release.txt."
    if name.startswith("."):
        return "hidden files (names starting with a dot) are not read as releases; rename it."
    if len(name.encode("utf-8")) > 255:
        return "the name is too long for a file name; shorten it."
    if Path(name).suffix.lower() not in config.CORPUS_SUFFIXES:
        return f"only {', '.join(config.CORPUS_SUFFIXES[:-1])} and {config.CORPUS_SUFFIXES[-1]} files can be added as releases."
    target = (corpus / name).resolve()
    if target.parent != corpus.resolve():
        return ("the name would place the file outside the corpus folder; "
                "upload it under a plain file name such as release.txt.")
    return None


def _corpus_texts(corpus: Path) -> dict[str, tuple[str, str, bool]]:
    """Normalised body -> (path, title, False) of every release already in the corpus."""
    if not corpus.is_dir():
        return {}
    try:
        read = read_corpus(corpus)
    except CorpusError:  # an empty corpus has nothing to duplicate
        return {}
    return {normalised_text(r.text): (r.path, r.title, False) for r in read.releases}


def add_files(paths: list[str | Path], corpus_dir: str | Path | None = None,
              names: list[str] | None = None, folder: str | Path | None = None) -> IngestReport:
    """Copy the release files at `paths` into `folder` (a folder of the corpus, default the corpus itself; the app
    uses config.uploads_dir), under `names` (default: their own names).

    Refused, with the reason: names that are not plain file names of a format read as releases
    (config.CORPUS_SUFFIXES) inside the corpus folder (or hidden ones), files over
    config.MAX_UPLOAD_BYTES, files their converter cannot read (index.converters: not UTF-8 text, a
    broken or encrypted PDF, ..., read in the worker with its limits) or that hold no release with a body, names already taken, and releases whose text (case and
    whitespace aside) is already in the corpus or earlier in the same upload.
    """
    corpus = config.corpus_dir(corpus_dir)
    target = Path(folder) if folder is not None else corpus
    paths = [Path(p) for p in paths]
    if names is None:
        names = [p.name for p in paths]
    if len(names) != len(paths):
        raise ValueError("add_files needs one name per path.")
    report = IngestReport()
    known = _corpus_texts(corpus)
    taken: set[str] = set()
    ready: list[tuple[str, bytes]] = []

    for path, name in zip(paths, names):
        why = name_problem(name, target)
        data = b""
        if why is None:
            try:
                size = path.stat().st_size
                if size > config.MAX_UPLOAD_BYTES:
                    why = (f"it is {size_text(size)}, larger than the {size_text(config.MAX_UPLOAD_BYTES)} "
                           "limit for one file; split it into smaller files.")
                else:
                    data = path.read_bytes()
                    if len(data) > config.MAX_UPLOAD_BYTES:
                        why = f"it is larger than the {size_text(config.MAX_UPLOAD_BYTES)} limit for one file."
            except OSError as exc:
                why = f"the uploaded file could not be read ({exc.strerror or exc})."
        if why is None:
            try:
                releases, skipped = _read_upload(data, name)
            except CorpusError as exc:
                releases, skipped, why = [], [], str(exc)
            if why is None and not releases:
                detail = skipped[0][1] if skipped else "it holds no text"
                why = f"it holds no release with a body ({detail}); add the release's text below its title."
        if why is None and (os.path.lexists(target / name) or name in taken):
            why = (f"a file named {name} is already in the corpus; rename the upload or remove the old file first."
                   if name not in taken else f"two uploaded files are both named {name}; rename one of them.")
        if why is None:
            mine: dict[str, str] = {}
            for r in releases:
                key = normalised_text(r.text)
                if key in known:
                    where, title, uploaded = known[key]
                    why = (f"the release '{r.title}' has the same text as '{title}' ({where}), which is already "
                           f"{'in this upload' if uploaded else 'in the corpus'}.")
                    break
                if key in mine:
                    why = f"the release '{r.title}' has the same text as '{mine[key]}' in the same file."
                    break
                mine[key] = r.title
            else:
                known.update({key: (name, title, True) for key, title in mine.items()})
        if why is None:
            taken.add(name)
            ready.append((name, data))
        else:
            report.refused.append((name, why))

    if ready:
        target.mkdir(parents=True, exist_ok=True)
    for name, data in ready:
        try:
            write_atomic(target / name, data, replace=False, prefix="upload")
            report.accepted.append(name)
        except FileExistsError:
            report.refused.append((name, f"a file named {name} appeared in the corpus meanwhile; rename the upload."))
        except OSError as exc:
            report.refused.append((name, f"it could not be written to the corpus ({exc.strerror or exc})."))
    if report.accepted:
        fsync_dir(target)
    return report
