"""Read a corpus folder into Releases; each file goes through its format's converter (index/converters).

A release's `text` is what the release was read as (a .txt/.md exactly as written, the extracted text
of a page, PDF, Word file or e-mail), and every offset points into it.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import date as _date
from pathlib import Path

from . import config
from .errors import CorpusError


@dataclass(frozen=True)
class Release:
    """One news release; `text` is its body, verbatim, and every offset points into it."""

    release_id: str
    title: str
    text: str
    path: str  # relative to the corpus folder
    source: str = ""
    date: str | None = None  # ISO date, where the text gives one
    sha256: str = ""
    url: str = ""  # the page's canonical URL or the feed item's link, where known

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReadReport:
    """The releases read, and the files or releases skipped with the reason why."""

    releases: list[Release] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    files: int = 0
    root: str = ""


#: month names, lower-case, to their number (also read by qa.question for dates in questions)
MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
#: a month name or its abbreviation, captured
MONTH_PATTERN = r"(January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
_DATE_DMY = re.compile(rf"\b(\d{{1,2}})\s+{MONTH_PATTERN}\s+(\d{{4}})\b")
_DATE_MDY = re.compile(rf"\b{MONTH_PATTERN}\s+(\d{{1,2}}),\s+(\d{{4}})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def month_number(name: str) -> int:
    """1-12 for a month name or its abbreviation ("June", "jun.", "Sept")."""
    key = name.lower().rstrip(".")[:3]
    return next(v for k, v in MONTHS.items() if k.startswith(key))


def find_date(text: str) -> str | None:
    """The first calendar date written in `text`, as an ISO string, or None."""
    found = []
    for rx, order in ((_DATE_DMY, "dmy"), (_DATE_MDY, "mdy"), (_DATE_ISO, "iso")):
        m = rx.search(text)
        if m:
            found.append((m.start(), m, order))
    for _, m, order in sorted(found, key=lambda t: t[0]):
        try:
            if order == "iso":
                y, mo, d = int(m[1]), int(m[2]), int(m[3])
            else:
                d, mon, y = (m[1], m[2], m[3]) if order == "dmy" else (m[2], m[1], m[3])
                mo = month_number(mon)
                d, y = int(d), int(y)
            return _date(y, mo, d).isoformat()
        except ValueError:
            continue
    return None


def release_id_for(path: str, title: str, ordinal: int = 0) -> str:
    """A stable id from the file's relative path and the release's title."""
    key = f"{path}\n{title}\n{ordinal}" if ordinal else f"{path}\n{title}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def content_hash(title: str, source: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n{source}\n{text}".encode("utf-8")).hexdigest()


def normalised_text(text: str) -> str:
    """Text with case and whitespace folded, to recognise the same release uploaded twice."""
    return " ".join(text.split()).casefold()


def __getattr__(name: str):
    if name in ("decode", "parse_file"):  # moved to index.converters.text
        from .converters import text

        return getattr(text, name)
    raise AttributeError(name)


def corpus_files(corpus: Path) -> list[Path]:
    """Every file under `corpus`, searched recursively, hidden ones and sidecars left out, in a stable order."""
    from .converters import is_sidecar

    return sorted(
        p for p in corpus.rglob("*")
        if p.is_file() and not is_sidecar(p.name)
        and not any(part.startswith(".") for part in p.relative_to(corpus).parts)
    )


def read_corpus(corpus: str | Path | None = None) -> ReadReport:
    """Read every release under the corpus folder; bad files and unknown formats are skipped with a reason."""
    from .converters import convert_with_skips, known, unknown_reason

    root = config.corpus_dir(corpus)
    formats = ", ".join(config.CORPUS_SUFFIXES)
    if not root.exists():
        raise CorpusError(f"The corpus folder {root} does not exist; create it and put releases ({formats}) in it.")
    if not root.is_dir():
        raise CorpusError(f"The corpus path {root} is not a folder; point --corpus at a folder of releases ({formats}).")
    report = ReadReport(root=str(root))
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
