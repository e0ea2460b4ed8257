"""File -> releases, one converter per format (modelled on Haystack 2's converters).

`convert(path, relpath)` is the only entry: it picks the converter by suffix (`CONVERTERS`), reads
.txt/.md in this process (cheap) and every other format in a worker process that is killed past the
limits (`index.config.CONVERT_*`, see `worker`), applies a fetched page's sidecar
(`NAME.html.meta.json`: url and source from it, title and date where the page gives none), and
returns `Release`s, or raises `CorpusError` with one sentence for a file that cannot be read. The
build never knows formats.

The date rule is the same for every format: the first full date of the text (`find_date`), else the
document's metadata (an HTML page's published time, a PDF's or DOCX's creation date, an e-mail's
`Date:`), else the sidecar's date.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .. import config
from ..dates import find_date
from ..errors import CorpusError
from ..files import size_text
from ..types import Release, release_hash, release_id_for

#: suffix -> converter module (index/converters/<name>.py)
CONVERTERS = {".txt": "text", ".md": "text", ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx",
              ".eml": "email"}
#: read in the build's own process; the others go through the worker
IN_PROCESS = {"text"}
#: Bump when a converter's output changes: recorded in the manifest, so the next build re-reads every file
#: (releases whose text came out the same keep their vectors).
VERSION = 2  # 2: one release-hash rule for every format (.txt/.md releases had their own)
#: a fetched page's sidecar is `NAME.html` + this (written by index.fetch)
SIDECAR_SUFFIX = ".meta.json"
_CACHE: dict[tuple, list[Release]] = {}
_CACHE_MAX = 20_000


def limits() -> dict:
    return {"max_bytes": config.CONVERT_MAX_BYTES, "max_pdf_pages": config.CONVERT_MAX_PDF_PAGES,
            "timeout_s": config.CONVERT_TIMEOUT_S, "max_memory": config.CONVERT_MAX_MEMORY_BYTES}


def settings() -> dict:
    """What the manifest records of how files were read."""
    return {"version": VERSION, "formats": sorted(CONVERTERS)}


def is_sidecar(path: str | Path) -> bool:
    return str(path).lower().endswith(SIDECAR_SUFFIX)


def known(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CONVERTERS


def unknown_reason(relpath: str) -> str:
    suffix = Path(relpath).suffix.lower() or "(no extension)"
    return (f"{relpath} was skipped: {suffix} files are not read as releases "
            f"(the formats read are {', '.join(config.CORPUS_SUFFIXES)}).")


def _sidecar(path: Path, relpath: str) -> tuple[dict, str]:
    """A fetched page's sidecar (its fields, the sha256 of its bytes), or ({}, "") when there is none."""
    side = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        data = side.read_bytes()
    except FileNotFoundError:
        return {}, ""
    except OSError:
        return {}, ""
    try:
        meta = json.loads(data)
        if not isinstance(meta, dict):
            raise ValueError
    except ValueError:
        raise CorpusError(f"{relpath}{SIDECAR_SUFFIX} is not a valid sidecar (not a JSON object); "
                          "delete it or fetch the page again.") from None
    return meta, hashlib.sha256(data).hexdigest()


def _release(relpath: str, doc: dict, meta: dict, meta_sha: str, ordinal: int = 0) -> Release:
    """A converter's document as a release: the one rule for its title, date, URL, source, id and hash."""
    text = doc["text"]
    title = " ".join((doc.get("title") or "").split()) or str(meta.get("title") or "").strip()
    if not title:
        title = " ".join(text.split("\n", 1)[0].split())[:120]
    day = find_date(text[:2000]) or find_date(title) or doc.get("date") or meta.get("date") or None
    url = str(meta.get("url") or "") or doc.get("url") or ""
    source = str(meta.get("source") or "") or doc.get("source") or ""
    return Release(release_id=release_id_for(relpath, title, ordinal), title=title, text=text, path=relpath,
                   source=source, date=day, sha256=release_hash(title, source, text, day, url, meta_sha), url=url)


def _releases(relpath: str, docs: list[dict], meta: dict, meta_sha: str) -> tuple[list[Release], list[tuple[str, str]]]:
    """The releases of a file's documents; a document with no body is skipped, named (a .txt may hold several)."""
    if not docs:
        return [], [(relpath, "the file is empty")]
    releases, skipped, seen = [], [], {}
    for doc in docs:
        if not doc["text"]:
            skipped.append((relpath, f"the release '{doc.get('title') or ''}' has no body"))
            continue
        key = " ".join((doc.get("title") or "").split())
        ordinal = seen[key] = seen.get(key, -1) + 1  # releases of one title in a file: 0, 1, ...
        releases.append(_release(relpath, doc, meta, meta_sha, ordinal))
    return releases, skipped


def convert(path: str | Path, relpath: str | None = None) -> list[Release]:
    """The releases of one file, or CorpusError with one sentence saying why it cannot be read."""
    releases, skipped = convert_with_skips(path, relpath)
    if not releases:
        why = skipped[0][1] if skipped else "it holds no release"
        raise CorpusError(f"{relpath or Path(path).name} holds no release with a body ({why}).")
    return releases


def convert_with_skips(path: str | Path, relpath: str | None = None) -> tuple[list[Release], list[tuple[str, str]]]:
    """`convert`, also returning the releases of a file skipped for having no body (a .txt with several)."""
    path = Path(path)
    relpath = relpath or path.name
    kind = CONVERTERS.get(path.suffix.lower())
    if kind is None:
        raise CorpusError(unknown_reason(relpath))
    lim = limits()
    try:
        stat = path.stat()
    except OSError as exc:
        raise CorpusError(f"{relpath} could not be opened ({exc.strerror or exc}).") from None
    if stat.st_size > lim["max_bytes"]:
        raise CorpusError(f"{relpath} is {size_text(stat.st_size)}, larger than the {size_text(lim['max_bytes'])} "
                          "a release file may be; split it into smaller files.")
    meta, meta_sha = _sidecar(path, relpath)
    if kind in IN_PROCESS:
        from . import text

        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorpusError(f"{relpath} could not be opened ({exc.strerror or exc}).") from None
        return _releases(relpath, text.convert(data, relpath), meta, meta_sha)
    key = (str(path.resolve()), relpath, stat.st_size, stat.st_mtime_ns, meta_sha, VERSION)
    if key in _CACHE:
        return list(_CACHE[key]), []
    from . import worker

    releases, _ = _releases(relpath, worker.read(kind, str(path), relpath, lim), meta, meta_sha)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = releases
    return list(releases), []
