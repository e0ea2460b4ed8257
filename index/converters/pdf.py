"""PDF files (pypdf): the text in reading order, as a person reads the printed page.

Each page's text comes from pypdf's layout mode (lines top to bottom, a blank line where the page has
a vertical gap); lines repeated at the top or bottom of most pages (running headers and footers) and
page numbers are dropped; a word hyphenated at a line break is joined again; the lines of a paragraph
are joined into one, and a paragraph cut by a page break is joined across it. The title is the first
heading (the largest type on the first page), even when the text layer joins a small-print letterhead to it
(the letterhead then leaves the text), not the `/Title` metadata, which is often junk ("Microsoft Word -
pr2024_078.docx", "PR/CP(2024)078"); the date is the first full date of the text, else that of such a
letterhead, else the PDF's creation date.
"""
from __future__ import annotations

import io
import logging
import math
import re
from collections import Counter

from ..dates import find_date
from ..errors import CorpusError

_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–—(]?\s*\d{1,4}\s*[-–—)]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)
_JUNK_TITLE = re.compile(r"^(?:microsoft\s+\w+\s*-|untitled|document\s*\d*$|doc\d*$)|\.(?:docx?|pdf|rtf|odt|pages|indd|pptx?|xlsx?)\b",
                         re.I)
_ENDS_SENTENCE = re.compile(r"[.!?:;\"”’)\]]$")
#: lines at each end of a page looked at for running headers and footers
_ZONE = 2


def junk_title(title: str) -> bool:
    """True for metadata titles that are not a headline: a program's placeholder, a file name ("pr2024_078",
    "Microsoft Word - x.docx") or a reference number ("PR/CP(2024)078", "Ref. 2024/17"): one word with digits
    or underscores, or more digits and signs than letters."""
    text = " ".join(title.split())
    if not text or _JUNK_TITLE.search(text):
        return True
    if " " not in text and re.search(r"[\d_]", text):
        return True
    solid = text.replace(" ", "")
    return sum(c.isalpha() for c in solid) * 2 < len(solid)


def _key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()).casefold())


def _page_blocks(text: str) -> list[list[str]]:
    """A page's layout text as blocks of consecutive non-blank lines, spaces folded."""
    blocks, cur = [], []
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def _drop_running(pages: list[list[list[str]]]) -> list[list[list[str]]]:
    """Pages without their running headers/footers (a line at the same place from a page's top or bottom
    on most pages, digits aside) and page numbers."""
    def zone(blocks):
        flat = [(b, i) for b, block in enumerate(blocks) for i in range(len(block))]
        top = [(("top", n), at) for n, at in enumerate(flat[:_ZONE])]
        bottom = [(("bottom", n), at) for n, at in enumerate(reversed(flat[-_ZONE:]))]
        return top + bottom

    counts: Counter = Counter()
    for blocks in pages:
        counts.update({(where, _key(blocks[b][i])) for where, (b, i) in zone(blocks)})
    need = max(2, math.ceil(0.5 * len(pages)))
    out = []
    for blocks in pages:
        drop = {(b, i) for where, (b, i) in zone(blocks)
                if _PAGE_NUMBER.match(blocks[b][i])
                or (len(pages) > 1 and counts[(where, _key(blocks[b][i]))] >= need)}
        kept = [[line for i, line in enumerate(block) if (b, i) not in drop] for b, block in enumerate(blocks)]
        out.append([block for block in kept if block])
    return out


def _join_lines(lines: list[str]) -> str:
    """One paragraph from its lines: a word hyphenated at a line break joined, other lines joined by a space."""
    out = lines[0]
    for line in lines[1:]:
        if re.search(r"[^\W\d_]-$", out) and line[:1].islower():
            out = out[:-1] + line
        else:
            out = f"{out} {line}"
    return out


def _heading(page) -> tuple[str, set[str]]:
    """The text set in the largest type on a page, when it is larger than the body text (else ""), and the
    lines set in type smaller than the body's (a letterhead or running header, spaces folded)."""
    pieces: list[tuple[float, str]] = []

    def visit(text, cm, tm, font, size):
        if text.strip():
            scale = math.hypot(tm[0] * cm[0] + tm[1] * cm[2], tm[0] * cm[1] + tm[1] * cm[3]) or 1.0
            pieces.append((round(size * scale, 1), text))

    try:
        page.extract_text(visitor_text=visit)
    except Exception:
        return "", set()
    if not pieces:
        return "", set()
    by_size: Counter = Counter()
    for size, text in pieces:
        by_size[size] += len(text)
    body = by_size.most_common(1)[0][0]
    top = max(by_size)
    small = {" ".join(text.split()) for size, text in pieces if size < body * 0.9}
    if top < body * 1.15:
        return "", small
    first = next(i for i, (size, _) in enumerate(pieces) if size == top)
    run = []
    for size, text in pieces[first:]:
        if size != top:
            break
        run.append(text)
    return " ".join(" ".join(run).split()), small


def _heading_block(heading: str, blocks: list[list[str]], small: set[str]) -> tuple[int, int] | None:
    """(index, letterhead lines) of the first of the first page's `blocks` that starts with `heading` once the
    small-print lines at its top are set aside (the text layer may join a letterhead to the headline); None
    when none of the first five does."""
    key = " ".join(heading.split()).casefold()
    if not key:
        return None
    for i, block in enumerate(blocks[:5]):
        lead = next((n for n, line in enumerate(block) if line not in small), len(block))
        text = _join_lines(block[lead:]).casefold() if lead < len(block) else ""
        if text == key or (len(key) > 12 and text.startswith(key)):
            return i, lead
    return None


def _metadata(reader) -> tuple[str, str | None]:
    try:
        meta = reader.metadata
        title = str(meta.title or "") if meta is not None else ""
        created = meta.creation_date if meta is not None else None
        return title, created.date().isoformat() if created is not None else None
    except Exception:
        return "", None


def convert(data: bytes, name: str, limits: dict) -> list[dict]:
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise CorpusError(f"{name} is not a PDF file (it does not start like one); export it as PDF again.")
    if b"%%EOF" not in data[-2048:]:
        raise CorpusError(f"{name} is a truncated or damaged PDF (it does not end like a PDF file); "
                          "download or export it again.")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except Exception as exc:
        raise CorpusError(f"{name} is a damaged PDF that could not be opened ({type(exc).__name__}); "
                          "download or export it again.") from None
    if encrypted:
        try:
            opened = reader.decrypt("")  # readable without a password when only editing is restricted
        except Exception:
            opened = 0
        if not opened:
            raise CorpusError(f"{name} is an encrypted (password-protected) PDF; save a copy without a password.")
    try:
        n = len(reader.pages)
    except Exception as exc:
        raise CorpusError(f"{name} is a damaged PDF whose pages could not be read ({type(exc).__name__}); "
                          "download or export it again.") from None
    if n > limits["max_pdf_pages"]:
        raise CorpusError(f"{name} has {n} pages, more than the {limits['max_pdf_pages']} a release may have; "
                          "split it into smaller PDFs.")
    if n == 0:
        raise CorpusError(f"{name} is a PDF with no pages; export it again.")
    try:
        pages = [_page_blocks(page.extract_text(extraction_mode="layout") or "") for page in reader.pages]
    except Exception as exc:
        raise CorpusError(f"{name} is a damaged PDF whose text could not be read ({type(exc).__name__}); "
                          "download or export it again.") from None
    if not any(pages):
        raise CorpusError(f"{name} has no text layer; OCR it first.")
    pages = _drop_running(pages)
    if not any(pages):
        raise CorpusError(f"{name} has no text layer; OCR it first.")

    first_page = next(i for i, p in enumerate(pages) if p)
    heading, small = _heading(reader.pages[first_page])
    paragraphs: list[str] = []
    joinable = False  # the last paragraph ran on to the page's end without ending a sentence
    for blocks in pages:
        for b, block in enumerate(blocks):
            text = _join_lines(block)
            if b == 0 and joinable and paragraphs and text[:1].islower():
                paragraphs[-1] = _join_lines([paragraphs[-1], text])
            else:
                paragraphs.append(text)
        joinable = bool(paragraphs) and not _ENDS_SENTENCE.search(paragraphs[-1])

    meta_title, meta_date = _metadata(reader)
    title, first = "", None
    found = _heading_block(heading, pages[first_page], small)
    if found:
        first, lead = found
        title = heading
        if lead:  # a small-print letterhead joined to the heading leaves the text; its date is the document's
            block = pages[first_page][first]
            meta_date = find_date(_join_lines(block[:lead])) or meta_date
            paragraphs[first] = _join_lines(block[lead:])
    if not title and not junk_title(meta_title):
        title = " ".join(meta_title.split())
        if paragraphs[0].casefold() == title.casefold():
            first = 0
    if not title and len(paragraphs) > 1 and len(paragraphs[0]) <= 200 and not _ENDS_SENTENCE.search(paragraphs[0]):
        title, first = paragraphs[0], 0
    if first is not None and paragraphs[first] != title:  # the heading ran on into the first paragraph
        paragraphs[first] = paragraphs[first][len(title):].strip()
        first = None if paragraphs[first] else first
    if title and first is not None:  # above the heading, small print with no date is a letterhead
        above = [i for i in range(first) if all(line in small for line in pages[first_page][i])
                 and not find_date(paragraphs[i])] if first <= len(pages[first_page]) else []
        paragraphs = [p if i not in above else "" for i, p in enumerate(paragraphs)]
    body = [p for i, p in enumerate(paragraphs) if i != first and p]
    if not body:
        raise CorpusError(f"{name} holds a title but no text; export the whole release as PDF.")
    return [{"title": title, "text": "\n\n".join(body), "date": meta_date, "url": "", "source": ""}]
