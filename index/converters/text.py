"""`.txt` / `.md` files: read in the build's own process (cheap), text kept exactly as written.

Like every converter it returns documents (title, text, source); `index.converters` makes them releases.

Two layouts are understood:
- several releases in one file, each as a title line, a blank line, a `Source: ...` line,
  then the body up to the next such header;
- one release per file, its first line the title (a leading Markdown `#` is dropped).
"""
from __future__ import annotations

import re

from ..errors import CorpusError

_SOURCE = re.compile(r"^Source:\s*(.*)$")


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


def parse(text: str, name: str) -> list[dict]:
    """Split one file's text into documents (title, text, source), in file order; a release with no body
    comes back with empty text (the caller skips it, naming it)."""
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
            return []
        title = raw[first].strip().lstrip("#").strip()
        pieces.append((title, "", lines[first][1], len(text)))
    # the blank lines around a body are trimmed, its characters kept exactly
    return [{"title": title, "text": text[start:end].strip(), "source": source}
            for title, source, start, end in pieces]


def convert(data: bytes, name: str, limits: dict | None = None) -> list[dict]:
    """The documents of one .txt/.md file's bytes (see `parse`)."""
    return parse(decode(data, name), name)
