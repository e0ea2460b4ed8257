"""Releases read from web pages, PDFs, Word files and e-mails (index/converters), on real documents:
HTML pages with site chrome around the article, PDFs written by fpdf2, DOCX written by python-docx and
.eml written by the standard library. What a user sees: title, date, text, the page's URL, the answer to
a question, that site chrome never becomes a passage, and one clear sentence for each bad file."""
from __future__ import annotations

import io
import json
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from index import config
from index.converters import convert
from index.errors import CorpusError
from index.ingest import add_files
from index.releases import read_corpus

from documents import press_pdf

#: Site chrome: none of it may end up in a release's text, a chunk or a source passage.
CHROME = ["We use cookies", "Accept all cookies", "Share on Facebook", "Share by e-mail", "Related news",
          "Defence Innovation Accelerator", "Terms of use", "Contact the press office", "Follow us"]

HARBOUR = [
    "On Monday (24 June 2024), the port authority opened the new Nordkai container terminal, which can "
    "handle 1.2 million containers a year.",
    "The harbour master, Ingrid Solberg, said the terminal would halve the waiting time of ships at anchor. "
    "Construction began in 2021 and cost 340 million euros.",
    "The terminal is run by the Nordkai Operating Company, owned jointly by the city and three shipping lines.",
]


def page(title: str, paragraphs: list[str], site: str = "Port of Nordby", published: str = "2024-06-20",
         canonical: str = "https://port.example/news/nordkai.html") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title} | {site}</title>
<link rel="canonical" href="{canonical}">
<meta property="og:site_name" content="{site}">
<meta property="article:published_time" content="{published}T09:00:00+00:00">
<script type="application/ld+json">{{"@type": "NewsArticle", "headline": "{title}", "datePublished": "{published}"}}</script>
</head><body>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your visit. Accept all cookies or manage
your preferences.</div>
<header><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>
<li><a href="/contact">Contact the press office</a></li></ul></nav></header>
<main><article><h1>{title}</h1><p class="meta"><time datetime="{published}">{published}</time></p>{body}
<div class="share"><a href="#">Share on Facebook</a> <a href="#">Share on X</a> <a href="#">Share by e-mail</a></div>
</article>
<aside class="related"><h2>Related news</h2><ul><li><a href="/n1">Ferry timetable changes for the summer season</a></li>
<li><a href="/n2">Port joins the Defence Innovation Accelerator programme</a></li></ul></aside></main>
<footer><p>© Port of Nordby 2024. Terms of use. Privacy. Follow us on social media.</p></footer>
</body></html>"""


def pdf_bytes(title: str, paragraphs: list[str], pages: int = 2, encrypt: str | None = None) -> tuple[bytes, list[str]]:
    """A PDF with a running header, a 'Page n of N' footer, hyphenated line breaks and a word processor's
    file name as its title; returns the bytes and the hyphenated words."""
    return press_pdf(title, paragraphs, header="Port of Nordby - Press release 2024/17", pages=pages, line_width=110,
                     title_meta="Microsoft Word - pr2024_078.docx", encrypt=encrypt)


LONG = [
    "On Tuesday (25 June 2024), the port authority signed an agreement with the municipality on shore power "
    "for cruise ships, so that ships at berth can switch off their engines and take electricity from land.",
    "The installation will be built between September and December, with transformers placed beside each "
    "berth and cables brought to the quays through underground conduits.",
    "According to the harbour master, shore power will cut the emissions of ships at berth by about ninety "
    "percent and reduce noise in the neighbourhoods around the harbour considerably.",
    "Environmental organisations welcomed the agreement, while shipowners asked for predictable electricity "
    "prices and for a transition period of two seasons before the connection becomes compulsory.",
]


def docx_bytes(title: str, paragraphs: list[str], created=None) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading(title, level=1)
    for p in paragraphs:
        d.add_paragraph(p)
    if created is not None:
        d.core_properties.created = created
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def eml_bytes(subject: str, body: str | None, html: str | None = None, date="Thu, 27 Jun 2024 08:30:00 +0200") -> bytes:
    m = EmailMessage()
    m["From"] = "Nordby Press Office <press@port.example>"
    m["To"] = "newsroom@example.org"
    m["Subject"] = subject
    m["Date"] = date
    if body is not None:
        m.set_content(body)
    if html is not None:
        if body is None:
            m.set_content(html, subtype="html")
        else:
            m.add_alternative(html, subtype="html")
    return bytes(m)


def one(path: Path):
    (r,) = convert(path, path.name)
    return r


def no_chrome(text: str) -> None:
    for bit in CHROME:
        assert bit not in text, bit


# -- each format --------------------------------------------------------------------------------------

def test_html_page_keeps_the_article_only(tmp_path):
    (tmp_path / "nordkai.html").write_text(page("Port authority opens the Nordkai container terminal", HARBOUR))
    r = one(tmp_path / "nordkai.html")
    assert r.title == "Port authority opens the Nordkai container terminal"  # the headline, not the <title>
    assert r.date == "2024-06-24"  # the text's date first, not the metadata's 2024-06-20
    assert r.url == "https://port.example/news/nordkai.html" and r.source == "Port of Nordby"
    assert r.text.split("\n\n") == HARBOUR
    no_chrome(r.text)


def test_html_date_falls_back_to_the_metadata(tmp_path):
    (tmp_path / "p.htm").write_text(page("Ferry timetable changes", ["The summer timetable starts with two more "
                                         "departures a day to the islands, the port authority said.",
                                         "Tickets can be bought on board."], published="2024-05-02"))
    assert one(tmp_path / "p.htm").date == "2024-05-02"


def test_fetched_page_takes_url_and_source_from_its_sidecar(tmp_path):
    path = tmp_path / "port-example-news-a-0123.html"
    path.write_text(page("Port authority opens the Nordkai container terminal", HARBOUR))
    side = tmp_path / (path.name + ".meta.json")
    meta = {"url": "https://port.example/feed-item/17", "title": "Feed title", "date": "2024-06-01",
            "source": "Nordby press feed", "feed": "https://port.example/feed.xml", "sha256": "x"}
    side.write_text(json.dumps(meta))
    r = one(path)
    assert (r.url, r.source, r.title, r.date) == ("https://port.example/feed-item/17", "Nordby press feed",
                                                  "Port authority opens the Nordkai container terminal", "2024-06-24")
    side.write_text(json.dumps(dict(meta, source="Renamed feed")))
    assert one(path).sha256 != r.sha256  # a changed sidecar is a changed release
    read = read_corpus(tmp_path)
    assert read.files == 1 and read.skipped == []  # the sidecar is not a file of its own


def test_pdf_reading_order_hyphenation_headers_and_title(tmp_path):
    data, hyphenated = pdf_bytes("Shore power agreement signed for cruise ships", LONG)
    assert hyphenated  # the writer did break words at line ends
    (tmp_path / "shore.pdf").write_bytes(data)
    r = one(tmp_path / "shore.pdf")
    assert r.title == "Shore power agreement signed for cruise ships"  # not "Microsoft Word - ..."
    assert r.date == "2024-06-25"
    assert r.text.split("\n\n") == LONG  # in order, words joined again, no header, footer or page number
    assert "Press release 2024/17" not in r.text and "Page 1" not in r.text


def test_pdf_headline_wins_over_a_joined_letterhead_and_a_reference_number(tmp_path):
    """The text layer joins the small-print letterhead to the headline in one block and `/Title` is a reference
    number: the headline in the largest type is the title, and the letterhead leaves the text."""
    letterhead = "PORT OF NORDBY - Harbour Office - Ref. PR/2024/078 - 26 June 2024"
    data, _ = press_pdf("Shore power agreement signed for cruise ships", LONG, header="Port of Nordby - Press release",
                        pages=1, line_width=110, title_meta="PR-CP(2024)078", letterhead=letterhead)
    (tmp_path / "shore.pdf").write_bytes(data)
    r = one(tmp_path / "shore.pdf")
    assert r.title == "Shore power agreement signed for cruise ships"
    assert r.text.split("\n\n") == LONG and "Harbour Office" not in r.text and "Press release" not in r.text
    assert r.date == "2024-06-25"  # the text's first date, as for every release


@pytest.mark.parametrize("title, junk", [
    ("Microsoft Word - pr2024_078.docx", True), ("pr2024_078_final", True), ("PR-CP(2024)078", True),
    ("PR/CP (2024) 078", True), ("Ref. 2024/17", True), ("IMG_0042", True), ("untitled", True), ("", True),
    ("Shore power agreement signed for cruise ships", False), ("G7 leaders meet in 2024", False),
    ("Rutte", False),
])
def test_pdf_metadata_titles_that_are_file_names_or_reference_numbers_are_junk(title, junk):
    from index.converters.pdf import junk_title

    assert junk_title(title) is junk


def test_pdf_date_falls_back_to_its_metadata(tmp_path):
    data, _ = pdf_bytes("Cranes arrive", ["Four new cranes arrived by ship and will be installed over the "
                                          "summer at the container quay."], pages=1)
    (tmp_path / "cranes.pdf").write_bytes(data)
    r = one(tmp_path / "cranes.pdf")
    assert r.title == "Cranes arrive" and r.date is not None and len(r.date) == 10


def test_docx_paragraphs_title_and_date(tmp_path):
    from datetime import datetime

    (tmp_path / "shore.docx").write_bytes(docx_bytes("Shore power agreement signed", LONG))
    r = one(tmp_path / "shore.docx")
    assert (r.title, r.date) == ("Shore power agreement signed", "2024-06-25")
    assert r.text.split("\n\n") == LONG
    (tmp_path / "undated.docx").write_bytes(docx_bytes("Cranes arrive", ["Four new cranes arrived by ship."],
                                                       created=datetime(2024, 6, 3, 12, 0)))
    assert one(tmp_path / "undated.docx").date == "2024-06-03"


def test_eml_subject_sender_date_and_body(tmp_path):
    body = ("Four new ship-to-shore cranes arrived at the container quay this week\n"
            "and will be installed over the summer.\n\nThey were built in Finland.\n")
    (tmp_path / "cranes.eml").write_bytes(eml_bytes("New cranes for the container quay", body))
    r = one(tmp_path / "cranes.eml")
    assert (r.title, r.source, r.date) == ("New cranes for the container quay", "Nordby Press Office", "2024-06-27")
    assert r.text == ("Four new ship-to-shore cranes arrived at the container quay this week and will be installed "
                      "over the summer.\n\nThey were built in Finland.")
    (tmp_path / "html.eml").write_bytes(eml_bytes("Nordkai opens", None, page("Nordkai opens", HARBOUR)))
    r = one(tmp_path / "html.eml")
    assert r.date == "2024-06-24" and "Ingrid Solberg" in r.text
    no_chrome(r.text)


# -- bad files: one sentence each, the others still read -----------------------------------------------

def _bad_files(folder: Path) -> dict[str, str]:
    """name -> words the refusal must hold."""
    data, _ = pdf_bytes("Shore power agreement", LONG)
    (folder / "truncated.pdf").write_bytes(data[: len(data) // 2])
    (folder / "locked.pdf").write_bytes(pdf_bytes("Locked", LONG, encrypt="secret")[0])
    from fpdf import FPDF

    scan = FPDF()
    scan.add_page()
    scan.set_fill_color(80, 80, 80)
    scan.rect(20, 20, 170, 250, style="F")  # a page with marks but no text, as a scan is
    (folder / "scan.pdf").write_bytes(bytes(scan.output()))
    (folder / "word.docx").write_bytes(b"This was saved as plain text, not as a Word file.")
    (folder / "empty.eml").write_bytes(eml_bytes("No body here", None))
    (folder / "links.html").write_text("<html><head><title>News | Port</title></head><body><nav><ul>"
                                       "<li><a href='/a'>Home</a></li><li><a href='/b'>News</a></li></ul></nav>"
                                       "<footer>© Port</footer></body></html>")
    (folder / "slides.pptx").write_bytes(b"PK\x03\x04")
    return {"truncated.pdf": "truncated or damaged PDF", "locked.pdf": "encrypted (password-protected)",
            "scan.pdf": "scan.pdf has no text layer; OCR it first.", "word.docx": "not a zip archive",
            "empty.eml": "has no body text", "links.html": "no article text",
            "slides.pptx": ".pptx files are not read as releases"}


def test_bad_files_are_skipped_with_one_sentence_each(tmp_path):
    (tmp_path / "nordkai.html").write_text(page("Port authority opens the Nordkai container terminal", HARBOUR))
    expected = _bad_files(tmp_path)
    read = read_corpus(tmp_path)
    assert [r.path for r in read.releases] == ["nordkai.html"]
    reasons = dict(read.skipped)
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])
        assert reasons[name].endswith(".") and reasons[name].count(". ") == 0, reasons[name]  # one sentence


def test_limits_pages_bytes_and_seconds(tmp_path, monkeypatch):
    data, _ = pdf_bytes("Shore power agreement signed", LONG, pages=2)
    (tmp_path / "two.pdf").write_bytes(data)
    monkeypatch.setattr(config, "CONVERT_MAX_PDF_PAGES", 1)
    with pytest.raises(CorpusError, match="has 2 pages, more than the 1"):
        convert(tmp_path / "two.pdf", "two.pdf")
    monkeypatch.setattr(config, "CONVERT_MAX_BYTES", 1000)
    with pytest.raises(CorpusError, match="larger than the"):
        convert(tmp_path / "two.pdf", "two.pdf")
    monkeypatch.undo()
    from index.converters import worker

    worker._WORKER.stop()  # a cold worker cannot answer within a millisecond: the file is given up, the worker killed
    monkeypatch.setattr(config, "CONVERT_TIMEOUT_S", 0.001)
    (tmp_path / "again.pdf").write_bytes(data + b"\n")  # not cached
    with pytest.raises(CorpusError, match="took longer than 0.001 s to read"):
        convert(tmp_path / "again.pdf", "again.pdf")
    assert worker._WORKER.proc is None
    monkeypatch.undo()
    assert one(tmp_path / "again.pdf").title == "Shore power agreement signed"  # a fresh worker reads the next


def test_uploads_read_the_new_formats_with_the_same_checks(tmp_path):
    corpus, src = tmp_path / "corpus", tmp_path / "src"
    src.mkdir()
    (src / "shore.docx").write_bytes(docx_bytes("Shore power agreement signed", LONG))
    (src / "nordkai.html").write_text(page("Port authority opens the Nordkai container terminal", HARBOUR))
    _bad_files(src)
    names = sorted(p.name for p in src.iterdir())
    report = add_files([src / n for n in names], corpus)
    assert sorted(report.accepted) == ["nordkai.html", "shore.docx"]
    refused = dict(report.refused)
    assert "scan.pdf has no text layer; OCR it first." in refused["scan.pdf"]
    assert "files can be added as releases" in refused["slides.pptx"]
    assert sorted(p.name for p in corpus.iterdir()) == ["nordkai.html", "shore.docx"]


# -- end to end: the real build, the real assistant -------------------------------------------------------

def test_mixed_folder_is_indexed_and_answered_without_chrome(tmp_path):
    import qa
    from index import generations, store
    from index.build import build_index

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "nordkai.html").write_text(page("Port authority opens the Nordkai container terminal", HARBOUR))
    (corpus / "shore.pdf").write_bytes(pdf_bytes("Shore power agreement signed for cruise ships", LONG)[0])
    (corpus / "cranes.docx").write_bytes(docx_bytes("New cranes for the container quay", [
        "Four new ship-to-shore cranes arrived at the container quay on 27 June 2024.",
        "The cranes were built in Finland and lift 65 tonnes each."]))
    (corpus / "ferry.eml").write_bytes(eml_bytes("Ferry timetable for the summer", "The summer ferry timetable "
                                                 "starts on 1 July 2024 with six departures a day to Ostholm.\n"))
    (corpus / "notes.odt").write_bytes(b"PK\x03\x04")
    report = build_index(corpus, index)
    assert report.releases == 4 and dict(report.skipped).keys() == {"notes.odt"}
    assert "Skipped notes.odt: notes.odt was skipped: .odt files are not read as releases" in report.summary()

    data = store.load(index)
    for rid in data.releases:
        for chunk in data.chunks.of_release(rid):
            no_chrome(chunk.text)
    assistant = qa.Assistant(index)
    answer = assistant.ask("Who is the harbour master?")
    assert answer.answered and "Ingrid Solberg" in answer.text
    src = next(s for s in answer.sources if s.release_id == answer.release_id)
    assert (src.title, src.date, src.url) == ("Port authority opens the Nordkai container terminal", "2024-06-24",
                                              "https://port.example/news/nordkai.html")
    for s in answer.sources:
        no_chrome(s.text)
    assert "Finland" in assistant.ask("Where were the new cranes built?").evidence

    # a broken file added later: skipped with its sentence, nothing already indexed is lost or re-embedded
    _bad_files(corpus)
    again = build_index(corpus, index)
    assert again.releases == 4 and again.unchanged == 4 and again.chunks_embedded == 0
    assert "scan.pdf has no text layer; OCR it first." in again.summary()

    # an index built by other converters (or before them) keeps working and is brought up to date in one build
    manifest = generations.current_generation(index) / "manifest.json"
    m = json.loads(manifest.read_text())
    m["converters"] = {"version": 0}
    manifest.write_text(json.dumps(m))
    upgraded = build_index(corpus, index)
    assert upgraded.written and upgraded.chunks_embedded == 0 and upgraded.unchanged == 4
    assert "another version of the file converters" in upgraded.note
