"""Read a corpus folder into Releases, keeping each release's text exactly as written.

Two file layouts are understood:
- several releases in one file, each as a title line, a blank line, a `Source: ...` line,
  then the body up to the next such header;
- one release per file, its first line the title (a leading Markdown `#` is dropped).
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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReadReport:
    """The releases read, and the files or releases skipped with the reason why."""

    releases: list[Release] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    files: int = 0
    root: str = ""


_SOURCE = re.compile(r"^Source:\s*(.*)$")
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


def decode(data: bytes, name: str) -> str:
    """UTF-8 text of a file's bytes, or a CorpusError saying why it is not usable."""
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{name} is not a text file (it holds binary data); remove it or save it as UTF-8 text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{name} is not UTF-8 text (bad byte at position {exc.start}); re-save it as UTF-8."
        ) from None


def _line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, end excluding the newline."""
    spans, pos = [], 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        spans.append((pos, pos + len(stripped)))
        pos += len(line)
    return spans


def parse_file(text: str, relpath: str) -> tuple[list[Release], list[tuple[str, str]]]:
    """Split one file's text into releases; returns (releases, skipped)."""
    lines = _line_spans(text)
    raw = [text[s:e] for s, e in lines]
    headers = [
        i for i in range(len(raw) - 2)
        if raw[i].strip() and not raw[i + 1].strip() and _SOURCE.match(raw[i + 2].strip())
        and (i == 0 or not raw[i - 1].strip())
    ]
    pieces: list[tuple[str, str, int, int]] = []  # title, source, body start, body end
    if headers:
        for n, i in enumerate(headers):
            body_start = lines[i + 2][1]
            body_end = lines[headers[n + 1]][0] if n + 1 < len(headers) else len(text)
            pieces.append((raw[i].strip(), _SOURCE.match(raw[i + 2].strip())[1].strip(), body_start, body_end))
    else:
        first = next((i for i, line in enumerate(raw) if line.strip()), None)
        if first is None:
            return [], [(relpath, "the file is empty")]
        title = raw[first].strip().lstrip("#").strip()
        pieces.append((title, "", lines[first][1], len(text)))

    releases, skipped, seen = [], [], {}
    for title, source, start, end in pieces:
        # Trim the blank lines around the body but keep its characters exactly.
        body = text[start:end]
        body = body.strip()
        if not body:
            skipped.append((relpath, f"the release '{title}' has no body"))
            continue
        ordinal = seen.get(title, 0)
        seen[title] = ordinal + 1
        releases.append(Release(
            release_id=release_id_for(relpath, title, ordinal),
            title=title,
            text=body,
            path=relpath,
            source=source,
            date=find_date(body[:2000]) or find_date(title),
            sha256=content_hash(title, source, body),
        ))
    return releases, skipped


def corpus_files(corpus: Path) -> list[Path]:
    """The release files under `corpus`, searched recursively, hidden ones left out, in a stable order."""
    return sorted(
        p for p in corpus.rglob("*")
        if p.is_file() and p.suffix.lower() in config.CORPUS_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(corpus).parts)
    )


def read_corpus(corpus: str | Path | None = None) -> ReadReport:
    """Read every release under the corpus folder; bad files are skipped with a reason."""
    root = config.corpus_dir(corpus)
    if not root.exists():
        raise CorpusError(f"The corpus folder {root} does not exist; create it and put .txt or .md releases in it.")
    if not root.is_dir():
        raise CorpusError(f"The corpus path {root} is not a folder; point --corpus at a folder of .txt or .md releases.")
    report = ReadReport(root=str(root))
    for path in corpus_files(root):
        rel = path.relative_to(root).as_posix()
        report.files += 1
        try:
            text = decode(path.read_bytes(), rel)
        except (CorpusError, OSError) as exc:
            report.skipped.append((rel, str(exc)))
            continue
        releases, skipped = parse_file(text, rel)
        report.releases.extend(releases)
        report.skipped.extend(skipped)
    if not report.releases:
        why = f"; skipped: {report.skipped[0][0]}: {report.skipped[0][1]}" if report.skipped else ""
        raise CorpusError(
            f"The corpus folder {root} holds no readable releases (.txt or .md files){why}."
        )
    return report
