"""The bundled releases as web pages (with site chrome) and as PDFs; extraction speed and build time by format.

    python scripts/bench_converters.py [--out DIR] [--copies N] [--build N]

Writes DIR/txt (the bundled corpus), DIR/html (each release as a page with a nav menu, cookie banner,
share links, related news and a footer around the article) and DIR/pdf (each release printed by fpdf2 with
a running header, page numbers and hyphenated line breaks), checks that every format reads back with the
same titles and dates, and times: HTML pages/s and PDF pages/s through the worker, reading N copies of
each format (`read_corpus`), and a full `index build` of --build copies of each. The folders are kept, so
`python -m qa.training.eval ../shared/data/nato_dev.jsonl --index DIR/index-html` (and -pdf, -txt)
scores each format after `python -m index build --corpus DIR/html --index DIR/index-html`.
"""
from __future__ import annotations

import argparse
import html
import shutil
import tempfile
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the PDF writer the converter tests use

from documents import press_pdf  # noqa: E402
from index.releases import Release, read_corpus  # noqa: E402

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def page(r: Release) -> str:
    paras = "".join(f"<p>{html.escape(p)}</p>" for p in r.text.split("\n") if p.strip())
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(r.title)} | NATO Newsroom</title>
<meta property="og:site_name" content="NATO Newsroom">
{f'<meta property="article:published_time" content="{r.date}T09:00:00+00:00">' if r.date else ""}
<link rel="canonical" href="https://www.nato.int/news/{r.release_id}.htm"></head><body>
<div class="cookie-consent">We use cookies to improve your experience. Accept all cookies or manage preferences.</div>
<header><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/news">News room</a></li>
<li><a href="/topics">Topics</a></li><li><a href="/contact">Contact the press office</a></li></ul></nav></header>
<main><article><h1>{html.escape(r.title)}</h1>{paras}
<div class="share"><a href="#">Share on Facebook</a> <a href="#">Share on X</a> <a href="#">Share by e-mail</a></div>
</article><aside class="related"><h2>Related news</h2><ul><li><a href="/a">NATO launches the Defence Innovation
Accelerator</a></li><li><a href="/b">Allies meet in Brussels</a></li></ul></aside></main>
<footer><p>© North Atlantic Treaty Organization. Terms of use. Privacy. Follow us on social media.</p></footer>
</body></html>"""


def pdf(r: Release) -> bytes:
    return press_pdf(r.title, [p for p in r.text.split("\n") if p.strip()], header="NATO Press Release", font=FONT)[0]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench-converters")
    ap.add_argument("--copies", type=int, default=1000, help="releases of each format read for the speed figures")
    ap.add_argument("--build", type=int, default=0, help="also time a full index build of this many of each")
    args = ap.parse_args()
    releases = read_corpus(ROOT / "corpus").releases
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    for fmt in ("txt", "html", "pdf"):
        (out / fmt).mkdir(parents=True)
    shutil.copy(ROOT / "corpus" / "nato-releases-2024-06.txt", out / "txt")
    pdf_pages = 0
    for i, r in enumerate(releases):
        (out / "html" / f"{i:02d}.html").write_text(page(r), encoding="utf-8")
        data = pdf(r)
        pdf_pages += data.count(b"/Type /Page\n") or data.count(b"/Type /Page ") or 1
        (out / "pdf" / f"{i:02d}.pdf").write_bytes(data)
    by_title = {r.title: r for r in releases}
    for fmt in ("html", "pdf"):
        got = read_corpus(out / fmt).releases
        same = [r for r in got if r.title in by_title]
        text = sum(" ".join(r.text.split()) == " ".join(by_title[r.title].text.split()) for r in same)
        dated = sum(r.date == by_title[r.title].date for r in same)
        print(f"{fmt}: {len(same)} of {len(releases)} titles, {text} texts (whitespace aside) and {dated} dates "
              "as read from the .txt" + "".join(f"; {r.title!r}: date {r.date} from the metadata (the .txt has none)"
                                                  for r in same if by_title[r.title].date is None and r.date))

    from index import converters

    n = args.copies
    for fmt, ext in (("html", ".html"), ("pdf", ".pdf"), ("txt", ".txt")):
        bulk = out / f"bulk-{fmt}"
        bulk.mkdir()
        for i in range(n):
            r = releases[i % len(releases)]
            if fmt == "txt":
                (bulk / f"{i:05d}.txt").write_text(f"{r.title}\n\n{r.text}\n{i}\n", encoding="utf-8")
            else:
                src = (out / fmt / f"{i % len(releases):02d}{ext}").read_bytes()
                (bulk / f"{i:05d}{ext}").write_bytes(src + f"\n<!-- {i} -->".encode() if fmt == "html" else src + b"\n%" + str(i).encode())
        converters._CACHE.clear()
        read, sec = timed(lambda: read_corpus(bulk))
        pages = f" ({pdf_pages * n / len(releases) / sec:.1f} PDF pages/s)" if fmt == "pdf" else ""
        print(f"read {len(read.releases)} {fmt} releases in {sec:.2f} s: {n / sec:.1f} files/s{pages}")
        if args.build:
            from index.build import build_index

            small = out / f"build-{fmt}"
            small.mkdir()
            for p in sorted(bulk.iterdir())[:args.build]:
                shutil.copy(p, small / p.name)
            converters._CACHE.clear()
            rep, sec = timed(lambda: build_index(small, out / f"index-build-{fmt}", full=True))
            print(f"full build of {rep.releases} {fmt} releases ({rep.chunks} chunks): {sec:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
