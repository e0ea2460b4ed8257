"""Word files (`.docx`, python-docx): paragraphs and tables in document order.

The title is the first paragraph styled as a title or heading, else the core properties' title (unless it
is a file name), else a short first paragraph; the date is the first full date of the text, else the core
properties' creation date.
"""
from __future__ import annotations

import io
import zipfile

from ..errors import CorpusError
from .pdf import junk_title


def convert(data: bytes, name: str, limits: dict) -> list[dict]:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CorpusError(f"{name} is not a Word .docx file (it is not a zip archive); "
                          "open it in Word and save it as .docx again.")
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[tuple[str, str]] = []  # (style, text)
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                for row in item.rows:
                    cells = []
                    for cell in row.cells:  # a merged cell repeats in every column it spans
                        text = " ".join(cell.text.split())
                        if text and (not cells or cells[-1] != text):
                            cells.append(text)
                    if cells:
                        blocks.append(("table", " | ".join(cells)))
            else:
                text = " ".join(item.text.split())
                if text:
                    style = (item.style.name if item.style is not None else "") or ""
                    blocks.append((style.casefold(), text))
        props = document.core_properties
        meta_title, created = (props.title or "").strip(), props.created
    except CorpusError:
        raise
    except Exception as exc:
        raise CorpusError(f"{name} is not a readable Word .docx file ({type(exc).__name__}); "
                          "open it in Word and save it as .docx again.") from None
    if not blocks:
        raise CorpusError(f"{name} holds no text; add the release's text to it.")
    title, first = "", None
    for i, (style, text) in enumerate(blocks[:5]):
        if style == "title" or style.startswith("heading"):
            title, first = text, i
            break
    if not title and meta_title and not junk_title(meta_title):
        title = meta_title
        if blocks[0][1].casefold() == title.casefold():
            first = 0
    if not title and len(blocks) > 1 and len(blocks[0][1]) <= 200:
        title, first = blocks[0][1], 0
    body = [text for i, (_, text) in enumerate(blocks) if i != first]
    if not body:
        raise CorpusError(f"{name} holds a title but no text; add the release's text below it.")
    return [{
        "title": title,
        "text": "\n\n".join(body),
        "date": created.date().isoformat() if created is not None else None,
        "url": "",
        "source": "",
    }]
