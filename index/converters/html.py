"""Web pages (`.html` / `.htm`): the article's main text, without the site around it.

trafilatura (as Haystack 2's HTMLToDocument does) finds the article and leaves out menus, cookie
banners, share links, "related news" and footers; its metadata gives the headline (not the `<title>`
with the site's name stuck to it), the canonical URL, the site's name and the publication date
(htmldate: `article:published_time`, `<time datetime>`, JSON-LD, ...), which is only the fallback:
as for every format, a release's date is the first full date of its text.
"""
from __future__ import annotations

import re

from ..errors import CorpusError

#: Separators between a headline and the site's name in a `<title>` ("Headline | Site", "Headline - Site").
_SITE_SUFFIX = re.compile(r"\s+[|\-–—:·]\s+[^|\-–—:·]+$")


def _clean_title(title: str, site: str) -> str:
    title = " ".join((title or "").split())
    if site and title.endswith(site) and _SITE_SUFFIX.search(title):
        title = _SITE_SUFFIX.sub("", title)
    return title


def extract(data: bytes | str, name: str, what: str = "page") -> dict:
    """title, text (paragraphs separated by a blank line), date (metadata), url, source (site name)."""
    import trafilatura

    doc = trafilatura.bare_extraction(
        data, with_metadata=True, include_comments=False, include_tables=True, include_images=False,
        favor_precision=True, deduplicate=False,
        date_extraction_params={"extensive_search": False, "original_date": True})
    raw = (doc.text if doc is not None else "") or ""
    if what == "e-mail" and not raw.strip():  # an e-mail's HTML holds no site chrome: all of its text
        raw = trafilatura.html2txt(data) or ""
    site = " ".join(((doc.sitename if doc is not None else "") or "").split())
    title = _clean_title(doc.title if doc is not None else "", site)
    paragraphs = [" ".join(line.split()) for line in raw.split("\n")]
    paragraphs = [p for p in paragraphs if p]
    if paragraphs and title and paragraphs[0].casefold() == title.casefold():
        paragraphs = paragraphs[1:]  # the headline, kept as the title
    if not paragraphs:
        if what == "e-mail":
            raise CorpusError(f"{name} has no body text; only e-mails with a written message can be read.")
        raise CorpusError(f"{name} has no article text that could be extracted (it may be a list of links "
                          "or need JavaScript); save the article's own page.")
    return {
        "title": title,
        "text": "\n\n".join(paragraphs),
        "date": (doc.date if doc is not None else None) or None,
        "url": (doc.url if doc is not None else "") or "",
        "source": site,
    }


def convert(data: bytes, name: str, limits: dict) -> list[dict]:
    return [extract(data, name)]
