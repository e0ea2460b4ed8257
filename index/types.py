"""The data that flows from the corpus through the index to answering, in one place.

Converters make `Release`s, the build adds each one's `Annotation` (sentences) and `Chunk`s, the store
keeps them, and answering reads them back and filters by `DateRange` and `SourceFilter`. Nothing here
does I/O or imports another module of the project, so every side may import it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Release:
    """One news release; `text` is its body, verbatim, and every offset points into it."""

    release_id: str
    title: str
    text: str
    path: str  # relative to the corpus folder
    source: str = ""
    date: str | None = None  # ISO date, where the text or the document gives one
    sha256: str = ""  # `release_hash`: what a build compares to know the release changed
    url: str = ""  # the page's canonical URL or the feed item's link, where known

    def to_dict(self) -> dict:
        return asdict(self)


def release_id_for(path: str, title: str, ordinal: int = 0) -> str:
    """A stable id from the file's relative path and the release's title (and its rank among releases of
    that title in the file)."""
    key = f"{path}\n{title}\n{ordinal}" if ordinal else f"{path}\n{title}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def release_hash(title: str, source: str, text: str, date: str | None, url: str, sidecar_sha: str = "") -> str:
    """The content hash of a release: every field a reader sees, and the sidecar it was read with."""
    return hashlib.sha256(json.dumps([title, source, text, date, url, sidecar_sha]).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Annotation:
    """One release's sentences, as (start, end) offsets into its text."""

    sentences: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"sentences": [list(s) for s in self.sentences]}

    @classmethod
    def from_dict(cls, d: dict) -> "Annotation":
        return cls([tuple(s) for s in d.get("sentences", ())])


@dataclass(frozen=True)
class Chunk:
    """A passage of a release: `text == release.text[start:end]`."""

    chunk_id: int
    release_id: str
    start: int
    end: int
    text: str
    n_tokens: int

    def to_dict(self) -> dict:
        return asdict(self)


def join_names(names: list[str], last: str = "and") -> str:
    """'A', 'A and B', 'A, B and C' (`last` joins the last two: "and", "or")."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {last} " + names[-1]


@dataclass(frozen=True)
class DateRange:
    """Releases dated from `since` to `until`: ISO days, both inclusive; None leaves that end open."""

    since: str | None = None
    until: str | None = None

    def describe(self) -> str:
        """'from 2024-06-01 to 2024-06-30', 'from 2024-06-01 on', 'up to 2024-06-30'."""
        if self.since and self.until:
            return f"from {self.since} to {self.until}"
        return f"from {self.since} on" if self.since else f"up to {self.until}"


def fold_source(name) -> str:
    """A source name as sources are compared: case-folded, each run of whitespace one space."""
    return " ".join(str(name).split()).casefold()


@dataclass(frozen=True)
class SourceFilter:
    """Releases from any of the sources `keys` (names folded by `fold_source`); `names` as the index spells
    them, for messages."""

    keys: frozenset[str]
    names: tuple[str, ...] = ()

    def describe(self) -> str:
        """'from NATO' or 'from NATO or Northwind Robotics'."""
        return "from " + join_names(list(self.names or sorted(self.keys)), "or")


@dataclass(frozen=True)
class CorpusFile:
    """A file a build read (a release file or a fetched page's sidecar): what tells, without converting it,
    whether it has changed since."""

    path: str  # relative to the corpus folder
    size: int
    mtime_ns: int
    sha256: str
