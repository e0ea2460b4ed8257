"""Read a corpus folder into Releases; each file goes through its format's converter (index/converters).

A release's `text` is what the release was read as (a .txt/.md exactly as written, the extracted text
of a page, PDF, Word file or e-mail), and every offset points into it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .converters import convert_with_skips, is_sidecar, known, unknown_reason
from .errors import CorpusError
from .freshness import snapshot
from .types import CorpusFile, Release


@dataclass
class ReadReport:
    """The releases read, and the files or releases skipped with the reason why."""

    releases: list[Release] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    files: int = 0
    root: str = ""
    read: list[CorpusFile] = field(default_factory=list)  # the files read, as the index records them


def normalised_text(text: str) -> str:
    """Text with case and whitespace folded, to recognise the same release uploaded twice."""
    return " ".join(text.split()).casefold()


def corpus_files(corpus: Path) -> list[Path]:
    """Every file under `corpus`, searched recursively, hidden ones and sidecars left out, in a stable order."""
    return sorted(
        p for p in corpus.rglob("*")
        if p.is_file() and not is_sidecar(p.name)
        and not any(part.startswith(".") for part in p.relative_to(corpus).parts)
    )


def read_corpus(corpus: str | Path | None = None) -> ReadReport:
    """Read every release under the corpus folder; bad files and unknown formats are skipped with a reason."""
    root = config.corpus_dir(corpus)
    formats = ", ".join(config.CORPUS_SUFFIXES)
    if not root.exists():
        raise CorpusError(f"The corpus folder {root} does not exist; create it and put releases ({formats}) in it.")
    if not root.is_dir():
        raise CorpusError(f"The corpus path {root} is not a folder; point --corpus at a folder of releases ({formats}).")
    report = ReadReport(root=str(root), read=snapshot(root))
    for path in corpus_files(root):
        rel = path.relative_to(root).as_posix()
        if not known(path):
            report.skipped.append((rel, unknown_reason(rel)))
            continue
        report.files += 1
        try:
            releases, skipped = convert_with_skips(path, rel)
        except CorpusError as exc:
            report.skipped.append((rel, str(exc)))
            continue
        report.releases.extend(releases)
        report.skipped.extend(skipped)
    if not report.releases:
        why = f"; skipped: {report.skipped[0][0]}: {report.skipped[0][1]}" if report.skipped else ""
        raise CorpusError(
            f"The corpus folder {root} holds no readable releases ({formats} files){why}."
        )
    return report
