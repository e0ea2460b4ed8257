"""`python -m index fetch`: a press office's RSS/Atom feed and its pages, served from 127.0.0.1.

The pages carry real site chrome (menu, cookie banner, related news, footer) around the article; the
fetcher saves them byte for byte with a sidecar of the feed item's link, title and date.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from index import config
from index.__main__ import main as index_main
from index.fetch import STATE_FILE, file_name

ROOT = Path(__file__).resolve().parent.parent

ARTICLES = {
    "/news/2024/06/harbour-opens.html": (
        "Port authority opens the new Nordkai container terminal",
        "2024-06-24T09:30:00+02:00",
        ["The port authority opened the Nordkai container terminal on Monday 24 June 2024.",
         "The terminal can handle 1.2 million containers a year and employs 640 people.",
         "Harbour master Ingrid Solberg said the quay was finished three months ahead of schedule."]),
    "/news/2024/06/ferry-line.html": (
        "New night ferry links Kiel and Gothenburg",
        "2024-06-25T18:00:00+02:00",
        ["A night ferry between Kiel and Gothenburg will sail three times a week from 1 September 2024.",
         "The ship MS Aurora carries 900 passengers and 250 cars."]),
    "/news/2024/06/dredging.html": (
        "Dredging of the outer channel to start in July",
        "2024-06-26T07:15:00+02:00",
        ["Dredging of the outer channel to a depth of 16 metres starts on 8 July 2024.",
         "The work costs 48 million euros and takes eleven weeks."]),
}


def page(title: str, published: str, paragraphs: list[str]) -> bytes:
    """An article page as press offices publish them: menus, cookie banner, related news and footer."""
    body = "\n".join(f"      <p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} | Port of Nordhavn - Press</title>
  <meta property="og:site_name" content="Port of Nordhavn">
  <meta property="article:published_time" content="{published}">
</head>
<body>
  <div id="cookie-banner">We use cookies to improve your experience. <button>Accept all cookies</button></div>
  <header><nav><a href="/">Home</a> <a href="/about">About the port</a> <a href="/news">Press room</a>
    <a href="/careers">Careers</a> <form><input name="q" placeholder="Search"></form></nav></header>
  <main>
    <article>
      <h1>{title}</h1>
      <time datetime="{published}">{published[:10]}</time>
{body}
      <div class="share">Share on Facebook | Share on X | Print this page</div>
    </article>
    <aside><h2>Related news</h2><ul><li><a href="/news/old">Port welcomes its largest cruise ship ever</a></li>
      <li><a href="/news/older">Annual report 2023 published</a></li></ul></aside>
  </main>
  <footer>&copy; 2024 Port of Nordhavn. All rights reserved. Imprint | Privacy | Contact the press office</footer>
</body>
</html>
""".encode("utf-8")


RSS_DATES = {"/news/2024/06/harbour-opens.html": "Mon, 24 Jun 2024 09:30:00 +0200",
             "/news/2024/06/ferry-line.html": "Tue, 25 Jun 2024 18:00:00 +0200",
             "/news/2024/06/dredging.html": "Wed, 26 Jun 2024 01:15:00 +0200"}  # 25 June in UTC


def rss(base: str, paths: list[str], title: str = "Port of Nordhavn - Press releases") -> bytes:
    items = "".join(
        f"<item><title>{ARTICLES[p][0] if p in ARTICLES else 'Item ' + p}</title><link>{base}{p}</link>"
        f"<guid>{base}{p}</guid><pubDate>{RSS_DATES.get(p, 'Thu, 27 Jun 2024 10:00:00 +0200')}</pubDate>"
        f"<description>Summary.</description></item>"
        for p in paths)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>{base}/news</link><description>Press releases</description>{items}</channel></rss>"
            ).encode("utf-8")


def atom(base: str, paths: list[str]) -> bytes:
    entries = "".join(
        f'<entry><title>{ARTICLES[p][0]}</title><link rel="alternate" href="{p}"/><id>urn:x:{p}</id>'
        f"<published>{ARTICLES[p][1]}</published><updated>2024-06-30T12:00:00Z</updated></entry>"
        for p in paths)
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            f'xml:base="{base}/"><title>Nordhavn press (Atom)</title><id>urn:x:feed</id>'
            f"<updated>2024-06-30T12:00:00Z</updated>{entries}</feed>").encode("utf-8")


class Site:
    """A web server on 127.0.0.1: path -> (status, content type, body, extra headers); requests are logged."""

    def __init__(self):
        self.routes: dict[str, tuple] = {}
        self.requests: list[str] = []
        self.delay: dict[str, float] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append(self.path)
                if self.path in site.delay:
                    time.sleep(site.delay[self.path])
                status, ctype, body, headers = site.routes.get(self.path, (404, "text/html", b"<h1>Not found</h1>", {}))
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                if headers.get("Content-Length", True):
                    self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    if k != "Content-Length":
                        self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes, ctype: str = "text/html; charset=utf-8", status: int = 200, **headers):
        self.routes[path] = (status, ctype, body, headers)

    def add_articles(self):
        for path, (title, published, paragraphs) in ARTICLES.items():
            self.add(path, page(title, published, paragraphs))

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def site():
    s = Site()
    s.add_articles()
    yield s
    s.server.shutdown()
    s.server.server_close()


def fetch_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QA_CORPUS_DIR"}
    return subprocess.run([sys.executable, "-m", "index", "fetch", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def fetch_here(capsys, *args: str) -> tuple[int, str, str]:
    """`python -m index fetch` in this process (faster; lets a test lower the limits in config)."""
    rc = index_main(["fetch", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def corpus_files(corpus: Path) -> list[str]:
    return sorted(p.name for p in corpus.iterdir())


def sidecar(corpus: Path, name: str) -> dict:
    return json.loads((corpus / f"{name}.meta.json").read_text(encoding="utf-8"))


def test_rss_feed_adds_each_page_once(site, tmp_path):
    site.add("/feed.xml", rss(site.base, list(ARTICLES)), "application/rss+xml")
    corpus = tmp_path / "corpus"
    first = fetch_cli(site.url("/feed.xml"), "--corpus", str(corpus))
    assert first.returncode == 0, first.stderr
    assert "3 added, 0 skipped, 0 failed" in first.stdout
    names = {path: file_name(site.url(path)) for path in ARTICLES}
    assert corpus_files(corpus) == sorted([STATE_FILE, ".fetch.lock"] + list(names.values())
                                          + [n + ".meta.json" for n in names.values()])
    for path, name in names.items():
        assert name.endswith(".html") and name.startswith("127-0-0-1-news-2024-06-")
        served = site.routes[path][2]
        assert (corpus / name).read_bytes() == served  # the page as served, chrome and all
        meta = sidecar(corpus, name)
        assert meta["url"] == site.url(path) and meta["title"] == ARTICLES[path][0]
        assert meta["source"] == "Port of Nordhavn - Press releases" and meta["feed"] == site.url("/feed.xml")
        assert meta["sha256"] == hashlib.sha256(served).hexdigest()
        assert set(meta) == {"url", "title", "date", "source", "feed", "sha256", "fetched_at"}
        assert f"Added {name}: '{ARTICLES[path][0]}'" in first.stdout
    # the day as the feed wrote it, in its own time zone (01:15 +0200 on the 26th is the 25th in UTC)
    assert [sidecar(corpus, names[p])["date"] for p in ARTICLES] == ["2024-06-24", "2024-06-25", "2024-06-26"]

    before = {n: (corpus / n).stat().st_mtime_ns for n in names.values()}
    site.requests.clear()
    second = fetch_cli(site.url("/feed.xml"), "--corpus", str(corpus))
    assert second.returncode == 0, second.stderr
    assert "0 added, 3 skipped, 0 failed" in second.stdout and "already fetched" in second.stdout
    assert site.requests == ["/feed.xml"]  # no page asked for again
    assert {n: (corpus / n).stat().st_mtime_ns for n in names.values()} == before


def test_atom_feed_with_relative_links_and_json(site, tmp_path, capsys):
    site.add("/atom.xml", atom(site.base, list(ARTICLES)[:2]), "application/atom+xml")
    rc, out, err = fetch_here(capsys, site.url("/atom.xml"), "--corpus", str(tmp_path), "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["source"] == "Nordhavn press (Atom)" and report["items"] == 2
    assert [a["url"] for a in report["added"]] == [site.url(p) for p in list(ARTICLES)[:2]]
    assert [a["date"] for a in report["added"]] == ["2024-06-24", "2024-06-25"]  # published, not updated
    assert report["skipped"] == [] and report["failed"] == []
    meta = sidecar(tmp_path, report["added"][0]["file"])
    assert meta["title"] == "Port authority opens the new Nordkai container terminal"

    rc, out, _ = fetch_here(capsys, site.url("/atom.xml"), "--corpus", str(tmp_path), "--json")
    assert rc == 0 and json.loads(out)["added"] == [] and len(json.loads(out)["skipped"]) == 2


def test_a_changed_url_with_the_same_page_is_not_saved_again(site, tmp_path, capsys):
    first = "/news/2024/06/harbour-opens.html"
    site.add("/feed.xml", rss(site.base, [first]))
    assert fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))[0] == 0
    moved = "/press/nordkai-terminal?ref=rss"
    site.add(moved, site.routes[first][2])
    site.add("/feed.xml", rss(site.base, [moved]))
    rc, out, _ = fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))
    assert rc == 0 and "0 added, 1 skipped" in out
    assert f"the same page as {file_name(site.url(first))}, already in the corpus." in out
    assert len([n for n in corpus_files(tmp_path) if n.endswith(".html")]) == 1
    site.requests.clear()  # the new URL is remembered: not even downloaded a third time
    rc, out, _ = fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))
    assert "already fetched" in out and site.requests == ["/feed.xml"]


def test_a_lost_state_file_brings_no_duplicates(site, tmp_path, capsys):
    site.add("/feed.xml", rss(site.base, list(ARTICLES)))
    assert fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))[0] == 0
    (tmp_path / STATE_FILE).unlink()
    site.requests.clear()
    rc, out, _ = fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))
    assert rc == 0 and "0 added, 3 skipped" in out and site.requests == ["/feed.xml"]


def test_items_that_fail_are_reported_and_the_others_kept(site, tmp_path, capsys):
    good = "/news/2024/06/ferry-line.html"
    site.add("/report.pdf", b"%PDF-1.7 ...", "application/pdf")
    site.add("/moved", b"", status=302, Location="ftp://127.0.0.1/release.html")
    site.add("/elsewhere", b"", status=301, Location=good)
    vague = "/news/2024/06/dredging.html"  # a page served as a download is still read as the page it is
    site.add(vague, site.routes[vague][2], "application/octet-stream")
    feed = rss(site.base, ["/news/missing.html", good, "/report.pdf", "/moved", vague]).replace(
        b"</channel>", b"<item><title>No link here</title></item>"
                       b"<item><title>Old archive</title><link>ftp://127.0.0.1/old.html</link></item></channel>")
    site.add("/feed.xml", feed)
    rc, out, err = fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))
    assert rc == 0, err
    assert "2 added, 0 skipped, 5 failed" in out
    assert f"Failed {site.url('/news/missing.html')}: the server answered 404 Not Found." in out
    assert f"Failed {site.url('/report.pdf')}: it is not a web page (application/pdf); only HTML pages are fetched." in out
    assert (f"Failed {site.url('/moved')}: it redirected to ftp://127.0.0.1/release.html, but only http and "
            "https addresses are fetched, not ftp:// ones.") in out
    assert "Failed item 6 'No link here': the feed gives it no link." in out
    assert "Failed ftp://127.0.0.1/old.html: only http and https addresses are fetched, not ftp:// ones." in out
    assert (tmp_path / file_name(site.url(good))).read_bytes() == site.routes[good][2]
    saved = [file_name(site.url(good)), file_name(site.url(vague))]
    assert [n for n in corpus_files(tmp_path) if not n.startswith(".")] == sorted(saved + [n + ".meta.json" for n in saved])
    # a redirect to a page already saved is recognised by its content
    site.add("/feed.xml", rss(site.base, ["/elsewhere"]))
    rc, out, _ = fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))
    assert "the same page as" in out


@pytest.mark.parametrize("case", ["refused", "not-a-feed", "404", "file", "ftp", "no-scheme"])
def test_a_feed_that_cannot_be_read_is_one_sentence_and_exit_2(site, tmp_path, capsys, case):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/feed.xml"
    site.add("/news", page("Press room", "2024-06-24", ["All our news."]))
    url, said = {
        "refused": (closed, f"The feed {closed} could not be read: it could not be reached (Connection refused)."),
        "not-a-feed": (site.url("/news"), f"{site.url('/news')} is not an RSS or Atom feed (it is a web page); "
                                          "give the address of the feed itself."),
        "404": (site.url("/feed.xml"), f"The feed {site.url('/feed.xml')} could not be read: "
                                       "the server answered 404 Not Found."),
        "file": ("file:///etc/passwd", "The feed address file:///etc/passwd cannot be fetched: only http and https "
                                       "addresses are fetched, not file:// ones."),
        "ftp": ("ftp://127.0.0.1/feed.xml", "cannot be fetched: only http and https addresses are fetched, not ftp://"),
        "no-scheme": ("press.example.org/rss", "The feed address press.example.org/rss cannot be fetched: it is not "
                                               "a web address (give a full one, such as https://example.org/feed.xml)."),
    }[case]
    corpus = tmp_path / "corpus"
    rc, out, err = fetch_here(capsys, url, "--corpus", str(corpus))
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and said in err and err.count("\n") == 1
    assert not corpus.exists()  # nothing written


def test_feed_errors_through_the_command_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/feed.xml"
    run = fetch_cli(closed, "--corpus", str(tmp_path / "c"))
    assert run.returncode == 2 and run.stdout == "" and run.stderr.count("\n") == 1
    assert "could not be reached (Connection refused)" in run.stderr
    run = fetch_cli("ftp://example.org/feed.xml", "--corpus", str(tmp_path / "c"), "--json")
    assert run.returncode == 2 and "only http and https addresses are fetched" in run.stderr


def test_oversized_downloads_are_refused(site, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(config, "FETCH_MAX_BYTES", 64 * 1024)
    big = page("A very long release", "2024-06-27", ["Word " * 20_000])
    site.add("/big.html", big)
    site.add("/big-streamed.html", big, **{"Content-Length": ""})  # no length given: cut off while reading
    site.add("/feed.xml", rss(site.base, ["/big.html", "/big-streamed.html", "/news/2024/06/dredging.html"]))
    rc, out, _ = fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))
    assert rc == 0 and "1 added, 0 skipped, 2 failed" in out
    assert (f"Failed {site.url('/big.html')}: the page is {round(len(big) / 1024)} KB, larger than the 64 KB limit "
            "for one page.") in out
    assert f"Failed {site.url('/big-streamed.html')}: the page is larger than the 64 KB limit for one page." in out
    assert not any(n.startswith(".fetch-") and n.endswith(".tmp") for n in corpus_files(tmp_path))

    site.add("/huge-feed.xml", rss(site.base, list(ARTICLES)) + b"<!--" + b"x" * 70_000 + b"-->")
    rc, _, err = fetch_here(capsys, site.url("/huge-feed.xml"), "--corpus", str(tmp_path))
    assert rc == 2 and "larger than the 64 KB limit for one feed" in err


def test_a_server_that_does_not_answer_times_out(site, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(config, "FETCH_TIMEOUT_S", 0.3)
    slow = "/news/2024/06/harbour-opens.html"
    site.delay[slow] = 1.5
    site.add("/feed.xml", rss(site.base, [slow, "/news/2024/06/ferry-line.html"]))
    rc, out, _ = fetch_here(capsys, site.url("/feed.xml"), "--corpus", str(tmp_path))
    assert rc == 0 and "1 added, 0 skipped, 1 failed" in out
    assert f"Failed {site.url(slow)}: the server did not answer within 0.3 s." in out


def test_every_keeps_polling_until_ctrl_c(site, tmp_path):
    paths = list(ARTICLES)
    site.add("/feed.xml", rss(site.base, paths[:1]))
    env = {k: v for k, v in os.environ.items() if k != "QA_CORPUS_DIR"}
    proc = subprocess.Popen([sys.executable, "-m", "index", "fetch", site.url("/feed.xml"), "--corpus",
                             str(tmp_path), "--every", "0.005"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while site.requests.count("/feed.xml") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        site.add("/feed.xml", rss(site.base, paths[:2]))  # a new release appears in the feed
        while not (tmp_path / file_name(site.url(paths[1]))).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.count("1 added") == 2 and "0 added, 1 skipped" in out
    assert "Stopped following" in err and "Traceback" not in err
    assert not any(n.endswith(".tmp") for n in corpus_files(tmp_path))


def test_every_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        index_main(["fetch", "https://example.org/feed.xml", "--every", "0"])
    assert exc.value.code == 2 and "--every must be a number of minutes above 0" in capsys.readouterr().err


def test_the_watcher_sees_fetched_pages_but_not_sidecars_or_state(tmp_path):
    from watchfiles import Change

    from index.watch import ReleaseFilter

    if ".html" not in config.CORPUS_SUFFIXES:
        pytest.skip("the corpus does not read .html pages yet (config.CORPUS_SUFFIXES)")
    seen = ReleaseFilter(tmp_path)
    assert seen(Change.added, str(tmp_path / "127-0-0-1-news-a-0123456789.html"))
    assert not seen(Change.added, str(tmp_path / "127-0-0-1-news-a-0123456789.html.meta.json"))
    assert not seen(Change.modified, str(tmp_path / STATE_FILE))
    assert not seen(Change.added, str(tmp_path / ".fetch-0123.tmp"))


def test_fetched_pages_are_indexed_and_answered_with_their_link(site, tmp_path):
    """End to end: fetch the feed, `python -m index build`, ask about a fetched article."""
    if not (ROOT / "index" / "converters").is_dir() or ".html" not in config.CORPUS_SUFFIXES:
        pytest.skip("the corpus does not read .html pages yet (index/converters)")
    import dataclasses

    from qa import Assistant
    from qa.answer import Source

    if "url" not in {f.name for f in dataclasses.fields(Source)}:
        pytest.skip("qa.Source has no url yet")
    site.add("/feed.xml", rss(site.base, list(ARTICLES)))
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    assert fetch_cli(site.url("/feed.xml"), "--corpus", str(corpus)).returncode == 0
    env = {k: v for k, v in os.environ.items() if k not in ("QA_CORPUS_DIR", "QA_INDEX_DIR")}
    build = subprocess.run([sys.executable, "-m", "index", "build", "--corpus", str(corpus), "--index", str(index),
                            "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert json.loads(build.stdout.splitlines()[-1])["releases"] == 3

    answer = Assistant(index_dir=index).ask("Who is the harbour master?")
    assert answer.answered and "Ingrid Solberg" in answer.text
    source = next(s for s in answer.sources if s.release_id == answer.release_id)
    assert source.url == site.url("/news/2024/06/harbour-opens.html")
    assert source.title == "Port authority opens the new Nordkai container terminal"
    assert source.date == "2024-06-24"
    for s in answer.sources:  # the site's chrome never becomes a passage
        assert "cookies" not in s.text and "Related news" not in s.text and "All rights reserved" not in s.text
