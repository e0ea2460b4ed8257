"""How BM25 sees text: lower-cased words, English stop words out, Snowball stems (bm25s's tokenizer).

The same rule at build time (index.writer) and at query time (index.search), recorded in the manifest.
"""
from __future__ import annotations

SETTINGS = {"stopwords": "en", "stemmer": "english"}


def stemmer():
    """The Snowball stemmer BM25 uses."""
    import Stemmer

    return Stemmer.Stemmer(SETTINGS["stemmer"])


def tokenize(texts: list[str], stem=None) -> list[list[str]]:
    """Tokens as BM25 sees them (lower-cased, English stop words out, Snowball-stemmed)."""
    import bm25s

    return bm25s.tokenize(texts, stopwords=SETTINGS["stopwords"], stemmer=stem or stemmer(),
                          return_ids=False, show_progress=False)


def tokenizer():
    """bm25s's tokenizer with these settings, keeping the vocabulary it meets (a build's)."""
    from bm25s.tokenization import Tokenizer

    return Tokenizer(stopwords=SETTINGS["stopwords"], stemmer=stemmer())
