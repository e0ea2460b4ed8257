"""Follow a press office's feed: download each new item's page into the corpus folder.

`python -m index fetch FEED_URL [--corpus DIR] [--every MINUTES] [--json]` reads an RSS or Atom feed
(feedparser, on bytes downloaded here: feedparser itself never opens a URL) and saves the page of each
item that is not in the corpus yet as `<slug of host and path>-<hash of the URL>.html`, with the sidecar
`<that name>.meta.json`:

    {"url": the item's link, "title": the item's title, "date": "YYYY-MM-DD" or null,
     "source": the feed's title, "feed": the feed's URL, "sha256": of the page's bytes,
     "fetched_at": ISO time, UTC}

The converters read the page and take url and source from the sidecar, title and date as fallbacks.
The sidecar is written before the page, and both atomically (a hidden temporary file, then a rename),
so a watcher that sees a page always finds its sidecar and never a partial file.

An item is downloaded once: the hidden `.fetch-state.json` of the corpus folder keeps the URLs fetched
(the item links and where they redirected to) and the sha256 of every page saved; an item whose URL is
known is skipped without a request, and a page whose bytes are already in the corpus under another URL
is not saved again (its URL is remembered, so it is not downloaded a third time). The sidecars in the
folder count too, so a lost state file does not bring duplicates. Only http and https URLs are
followed (redirects included), with a timeout, a time limit and a size cap per download
(`config.FETCH_*`). Nothing is indexed here: `python -m index build`, or a running
`python -m index watch` / `python -m ui --watch`, reads the new pages.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

from . import config
from .converters import SIDECAR_SUFFIX
from .errors import FeedError
from .files import size_text, write_atomic

STATE_FILE = ".fetch-state.json"
LOCK_FILE = ".fetch.lock"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
#: content types some servers give any file; a body that starts as HTML is then taken as a page
_VAGUE_TYPES = ("text/plain", "application/octet-stream")


class DownloadError(Exception):
    """One download failed; the message is the end of a sentence ("... answered 404 Not Found")."""


@dataclass
class FetchReport:
    """What one reading of a feed did: pages added, items skipped (url, why) and items failed (url, why)."""

    feed: str
    source: str = ""
    items: int = 0
    added: list[dict] = field(default_factory=list)  # {"file", "url", "title", "date"}
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    corpus_dir: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped"] = [{"url": u, "why": w} for u, w in self.skipped]
        d["failed"] = [{"url": u, "why": w} for u, w in self.failed]
        return d

    def summary(self) -> str:
        lines = [f"Read the feed '{self.source}' ({self.items} item{'s' if self.items != 1 else ''}): "
                 f"{len(self.added)} added, {len(self.skipped)} skipped, {len(self.failed)} failed."]
        lines += [f"Added {a['file']}: '{a['title']}'{' (' + a['date'] + ')' if a['date'] else ''}, from {a['url']}"
                  for a in self.added]
        lines += [f"Skipped {url}: {why}" for url, why in self.skipped]
        lines += [f"Failed {url}: {why}" for url, why in self.failed]
        if self.added:
            lines.append(f"Saved in {self.corpus_dir}; `python -m index build` (or a running `index watch`, "
                         "`ui --watch`) indexes them.")
        return "\n".join(lines)


# -- downloading ---------------------------------------------------------------------------------------

def check_url(url: str) -> str | None:
    """Why `url` is not fetched (a clause, no full stop), or None for an http/https URL with a host."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        if not parts.scheme:
            return "it is not a web address (give a full one, such as https://example.org/feed.xml)"
        return f"only http and https addresses are fetched, not {parts.scheme.lower()}:// ones"
    if not parts.hostname:
        return "it names no host (give a full address, such as https://example.org/feed.xml)"
    return None


def canonical_url(url: str) -> str:
    """The URL as kept and compared: scheme and host in lower case, no fragment, the path at least '/'."""
    parts = urllib.parse.urlsplit(url.strip())
    netloc = parts.netloc.lower() if "@" not in parts.netloc else parts.netloc
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http and https URLs only (urllib alone would also follow ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        why = check_url(urllib.parse.urljoin(req.full_url, newurl))
        if why:
            raise DownloadError(f"it redirected to {newurl}, but {why}.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def download(url: str, what: str = "page", accept: str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
             ) -> tuple[bytes, str, str]:
    """GET `url`: (body, content type, final URL), or DownloadError saying why not in a sentence's end.

    At most `config.FETCH_MAX_BYTES` are read (a larger Content-Length is refused before reading),
    each wait on the server is bounded by `config.FETCH_TIMEOUT_S` and the whole download by
    `config.FETCH_MAX_SECONDS`.
    """
    why = check_url(url)
    if why:
        raise DownloadError(f"{why}.")
    limit, timeout = config.FETCH_MAX_BYTES, config.FETCH_TIMEOUT_S
    request = urllib.request.Request(url, headers={"User-Agent": config.FETCH_USER_AGENT, "Accept": accept,
                                                   "Accept-Encoding": "identity"})
    started = time.monotonic()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.strip().isdigit() and int(length) > limit:
                raise DownloadError(f"the {what} is {size_text(int(length))}, larger than the {size_text(limit)} limit "
                                    f"for one {what}.")
            body = bytearray()
            while True:
                block = response.read(64 * 1024)
                if not block:
                    break
                body += block
                if len(body) > limit:
                    raise DownloadError(f"the {what} is larger than the {size_text(limit)} limit for one {what}.")
                if time.monotonic() - started > config.FETCH_MAX_SECONDS:
                    raise DownloadError(f"the {what} took longer than {config.FETCH_MAX_SECONDS:g} s to download.")
            ctype = (response.headers.get_content_type() or "") if response.headers.get("Content-Type") else ""
            return bytes(body), ctype, response.geturl()
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"the server answered {exc.code} {exc.reason}.") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise DownloadError(f"the server did not answer within {timeout:g} s.") from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise DownloadError(f"it could not be reached ({text}).") from None
    except TimeoutError:
        raise DownloadError(f"the server did not answer within {timeout:g} s.") from None
    except (OSError, ValueError) as exc:  # a connection reset midway, an invalid URL, a bad HTTP status line
        raise DownloadError(f"the download failed ({' '.join(str(exc).split()) or type(exc).__name__}).") from None


# -- the corpus side -----------------------------------------------------------------------------------

def file_name(url: str) -> str:
    """A stable file name for the page at `url`: a slug of its host and path, then 10 hex of its sha256."""
    parts = urllib.parse.urlsplit(url)
    path = re.sub(r"\.(s?html?|php|aspx?|jsp)$", "", parts.path.rstrip("/"), flags=re.I)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{parts.hostname or ''} {path}".lower()).strip("-")[:80].rstrip("-")
    return f"{slug or 'page'}-{hashlib.sha256(url.encode('utf-8')).hexdigest()[:10]}.html"


class FetchState:
    """The URLs fetched and the page hashes saved into one corpus folder (`.fetch-state.json`)."""

    def __init__(self, corpus: Path):
        self.path = corpus / STATE_FILE
        self.urls: dict[str, str] = {}  # canonical URL -> file name
        self.hashes: dict[str, str] = {}  # sha256 of a page -> file name
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.urls.update({str(k): str(v) for k, v in data.get("urls", {}).items()})
            self.hashes.update({str(k): str(v) for k, v in data.get("hashes", {}).items()})
        except (OSError, ValueError, AttributeError):
            pass  # no state yet, or an unreadable one: the sidecars below still say what is here
        for meta in corpus.glob(f"*{SIDECAR_SUFFIX}"):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            name = meta.name[:-len(SIDECAR_SUFFIX)]
            if isinstance(data, dict) and (corpus / name).is_file():
                if isinstance(data.get("url"), str):
                    self.urls.setdefault(canonical_url(data["url"]), name)
                if isinstance(data.get("sha256"), str):
                    self.hashes.setdefault(data["sha256"], name)

    def save(self) -> None:
        data = {"urls": dict(sorted(self.urls.items())), "hashes": dict(sorted(self.hashes.items()))}
        write_atomic(self.path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"), prefix="fetch")


# -- the feed ------------------------------------------------------------------------------------------

def item_date(entry) -> str | None:
    """The item's day (YYYY-MM-DD) as the feed wrote it (published, else updated), or None.

    The day is read in the feed's own time zone ("Wed, 26 Jun 2024 00:30 +0200" is 26 June), falling back
    to feedparser's parsed time (UTC) for the formats only it reads.
    """
    for key in ("published", "updated"):
        raw = (entry.get(key) or "").strip()
        if not raw:
            continue
        for parse in (parsedate_to_datetime, lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))):
            try:
                return parse(raw).date().isoformat()
            except (TypeError, ValueError, IndexError, OverflowError):
                continue
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            return f"{parsed.tm_year:04d}-{parsed.tm_mon:02d}-{parsed.tm_mday:02d}"
    return None


def _looks_like_html(data: bytes) -> bool:
    return data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))


def _one_line(text: str) -> str:
    return " ".join(str(text or "").split())


def read_feed(feed_url: str):
    """Download and parse the feed: (final URL, feedparser result), or FeedError in one sentence."""
    import feedparser

    why = check_url(feed_url)
    if why:
        raise FeedError(f"The feed address {feed_url} cannot be fetched: {why}.")
    try:
        data, ctype, final = download(feed_url, what="feed",
                                      accept="application/rss+xml,application/atom+xml,application/xml;q=0.9,"
                                             "text/xml;q=0.9,*/*;q=0.5")
    except DownloadError as exc:
        raise FeedError(f"The feed {feed_url} could not be read: {exc}") from None
    parsed = feedparser.parse(data, response_headers={"content-location": final, "content-type": ctype or "text/xml"})
    if not parsed.get("version") and not parsed.entries:
        looks = " (it is a web page)" if ctype in _HTML_TYPES or _looks_like_html(data) else ""
        raise FeedError(f"{feed_url} is not an RSS or Atom feed{looks}; give the address of the feed itself.")
    return final, parsed


def fetch_feed(feed_url: str, corpus_dir: str | Path | None = None) -> FetchReport:
    """Read the feed at `feed_url` once and save the pages of its new items into the corpus folder.

    A feed that cannot be read raises FeedError (nothing is written); an item that fails is reported
    in the report's `failed` and the others are kept. One fetch into a corpus folder at a time.
    """
    from filelock import FileLock

    t0 = time.perf_counter()
    corpus = config.corpus_dir(corpus_dir)
    final, parsed = read_feed(feed_url)
    source = _one_line(parsed.feed.get("title")) or (urllib.parse.urlsplit(final).hostname or feed_url)
    report = FetchReport(feed=feed_url, source=source, items=len(parsed.entries), corpus_dir=str(corpus))
    try:
        corpus.mkdir(parents=True, exist_ok=True)
        with FileLock(str(corpus / LOCK_FILE)):
            state = FetchState(corpus)
            for n, entry in enumerate(parsed.entries, 1):
                _fetch_item(entry, n, final, feed_url, source, corpus, state, report)
    except OSError as exc:
        raise FeedError(f"The corpus folder {corpus} cannot be written to ({exc.strerror or exc}); "
                        "point --corpus at a folder you can write.") from None
    report.seconds = time.perf_counter() - t0
    return report


def _fetch_item(entry, n: int, base: str, feed_url: str, source: str, corpus: Path, state: FetchState,
                report: FetchReport) -> None:
    title = _one_line(entry.get("title"))
    link = (entry.get("link") or "").strip()
    if not link:
        report.failed.append((f"item {n}" + (f" '{title}'" if title else ""), "the feed gives it no link."))
        return
    link = urllib.parse.urljoin(base, link)
    why = check_url(link)
    if why:
        report.failed.append((link, f"{why}."))
        return
    url = canonical_url(link)
    if url in state.urls:
        report.skipped.append((url, f"already fetched ({state.urls[url]})."))
        return
    try:
        data, ctype, final = download(url)
        if ctype and ctype not in _HTML_TYPES and not (ctype in _VAGUE_TYPES and _looks_like_html(data)):
            raise DownloadError(f"it is not a web page ({ctype}); only HTML pages are fetched.")
        if not data.strip():
            raise DownloadError("the page is empty.")
    except DownloadError as exc:
        report.failed.append((url, str(exc)))
        return
    digest = hashlib.sha256(data).hexdigest()
    final = canonical_url(final)
    if digest in state.hashes:
        same = state.hashes[digest]
        state.urls[url] = same
        if check_url(final) is None:
            state.urls.setdefault(final, same)
        state.save()
        report.skipped.append((url, f"the same page as {same}, already in the corpus."))
        return
    name = file_name(url)
    meta = {"url": url, "title": title or None, "date": item_date(entry), "source": source, "feed": feed_url,
            "sha256": digest, "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        write_atomic(corpus / (name + SIDECAR_SUFFIX),
                     (json.dumps(meta, indent=1, ensure_ascii=False) + "\n").encode("utf-8"), prefix="fetch")
        write_atomic(corpus / name, data, prefix="fetch")  # the page last: whoever sees it finds its sidecar
    except OSError as exc:
        report.failed.append((url, f"it could not be written to the corpus ({exc.strerror or exc})."))
        return
    state.urls[url] = name
    if final != url and check_url(final) is None:
        state.urls.setdefault(final, name)
    state.hashes[digest] = name
    state.save()
    report.added.append({"file": name, "url": url, "title": meta["title"] or "", "date": meta["date"]})


# -- command line --------------------------------------------------------------------------------------

def run(feed_url: str, corpus_dir: str | Path | None = None, every: float | None = None,
        as_json: bool = False) -> int:
    """`python -m index fetch`: 0 when the feed was read, 2 when it could not be (or was not a feed).

    With `every` (minutes) the feed is read again and again until Ctrl-C; a read that fails is reported
    and the next one still happens. Each read prints its report (one JSON object a line with `as_json`).
    """
    why = check_url(feed_url)
    if why:
        print(f"error: The feed address {feed_url} cannot be fetched: {why}.", file=sys.stderr)
        return 2
    status = 0
    if every is not None:
        # a shell starts background jobs with SIGINT ignored, which Python keeps: `fetch --every ... &` must
        # still stop cleanly on SIGINT (and on SIGTERM, as a service manager sends)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            try:
                report = fetch_feed(feed_url, corpus_dir)
                print(json.dumps(report.to_dict()) if as_json else report.summary(), flush=True)
                status = 0
            except FeedError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                status = 2
            if every is None:
                return status
            print(f"Next read of the feed in {every:g} minute{'s' if every != 1 else ''} (Ctrl-C stops).",
                  file=sys.stderr, flush=True)
            time.sleep(every * 60)
    except KeyboardInterrupt:
        print(f"Stopped following {feed_url}; the pages saved so far are kept.", file=sys.stderr, flush=True)
        return 0
