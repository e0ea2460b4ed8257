"""Press releases printed as PDFs the way a word processor prints them (fpdf2): a running header, a
'Page n of N' footer and long words hyphenated at line ends. Used by the converter tests and by
scripts/bench_converters.py, so both read the same kind of PDF."""
from __future__ import annotations

import io
from pathlib import Path


def press_pdf(title: str, paragraphs: list[str], *, header: str, pages: int = 1, font: Path | None = None,
              line_width: float | None = None, title_meta: str = "Microsoft Word - press-release.docx",
              encrypt: str | None = None, letterhead: str | None = None) -> tuple[bytes, list[str]]:
    """The PDF's bytes and the words hyphenated in it. `font`: a TrueType file for text beyond Latin-1
    (with its Bold beside it as NAME-Bold.ttf), else Helvetica; `line_width`: mm (default: the page's);
    `pages`: the paragraphs are spread over this many pages; `encrypt`: a user password (RC4);
    `letterhead`: a small-print line set right above the headline, with no gap between them."""
    from fpdf import FPDF

    face = "body" if font else "Helvetica"

    class Doc(FPDF):
        def header(self):
            self.set_font(face, size=8)
            self.cell(0, 6, header, align="R")
            self.ln(10)

        def footer(self):
            self.set_y(-15)
            self.set_font(face, size=8)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")

    doc = Doc()
    if font:
        doc.add_font("body", "", str(font))
        doc.add_font("body", "B", str(font.with_name(f"{font.stem}-Bold{font.suffix}")))
    doc.set_title(title_meta)
    doc.alias_nb_pages()
    doc.add_page()
    if letterhead:
        doc.set_font(face, size=7)
        doc.cell(0, 4, letterhead, new_x="LMARGIN", new_y="NEXT")
    doc.set_font(face, "B", 15)
    doc.multi_cell(0, 8, title)
    doc.ln(4)
    doc.set_font(face, size=11)
    width = line_width or doc.epw
    hyphenated = []
    per_page = -(-len(paragraphs) // max(pages, 1))
    for n, para in enumerate(paragraphs):
        if n and n % per_page == 0:
            doc.add_page()
        lines, cur = [], ""
        for w in para.split():
            t = f"{cur} {w}".strip()
            if doc.get_string_width(t) <= width:
                cur = t
                continue
            for k in range(len(w) - 3, 3, -1):  # hyphenate a long word at the line's end, as a typesetter does
                if w[:k].isalpha() and w[k:].isalpha() and doc.get_string_width(f"{cur} {w[:k]}-") <= width:
                    lines.append(f"{cur} {w[:k]}-")
                    hyphenated.append(w)
                    cur = w[k:]
                    break
            else:
                lines.append(cur)
                cur = w
        lines.append(cur)
        for line in lines:
            doc.cell(0, 6, line)
            doc.ln(6)
        doc.ln(4)
    data = bytes(doc.output())
    if encrypt:
        import pypdf

        reader, writer = pypdf.PdfReader(io.BytesIO(data)), pypdf.PdfWriter()
        for p in reader.pages:
            writer.add_page(p)
        writer.encrypt(user_password=encrypt, algorithm="RC4-128")
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    return data, hyphenated
