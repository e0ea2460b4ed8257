"""Sentences, tokens, entities and noun phrases of each release, computed once at index time.

The answer extractor needs sentence boundaries, each token's lemma, part of speech and
syntactic head, and the named entities: all of it comes from spaCy's small English
pipeline here, so that a question costs no parsing of the corpus.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from . import config

_LINE = re.compile(r"[^\r\n]+")
_LEAD_IN = ("–", "—", "-", ":")


@dataclass
class Annotation:
    """One release's linguistic layers; every offset is into the release's text.

    Tokens are parallel lists; `head` is the index of the token's syntactic head in
    the same lists (a root points to itself).
    """

    sentences: list[tuple[int, int]] = field(default_factory=list)
    tok_start: list[int] = field(default_factory=list)
    tok_end: list[int] = field(default_factory=list)
    lemma: list[str] = field(default_factory=list)
    pos: list[str] = field(default_factory=list)
    dep: list[str] = field(default_factory=list)
    head: list[int] = field(default_factory=list)
    entities: list[tuple[int, int, str]] = field(default_factory=list)
    noun_chunks: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, d: dict) -> "Annotation":
        a = cls(**d)
        a.sentences = [tuple(s) for s in a.sentences]
        a.entities = [tuple(e) for e in a.entities]
        a.noun_chunks = [tuple(n) for n in a.noun_chunks]
        return a


@lru_cache(maxsize=1)
def load_nlp():
    """The spaCy pipeline (loaded once per process)."""
    import spacy

    return spacy.load(config.SPACY_MODEL)


def _entities(doc) -> list[tuple[int, int, str]]:
    """Entity spans, with a date's day number put back where the tagger left it out ("1 October 2024")."""
    out = []
    for e in doc.ents:
        start = e.start
        if e.label_ == "DATE" and start > 0:
            prev = doc[start - 1]
            if prev.like_num and prev.text.isdigit() and 1 <= int(prev.text) <= 31 and not prev.ent_type_:
                start -= 1
        out.append((doc[start].idx, e.end_char, e.label_))
    return out


def _lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines with their offsets: a line break always ends a sentence in a release."""
    return [(m.start(), m.group()) for m in _LINE.finditer(text) if m.group().strip()]


def annotate(texts: list[str], batch_size: int = 64) -> list[Annotation]:
    """Annotate release texts; returns one Annotation per text, in order."""
    nlp = load_nlp()
    jobs = [(line, (i, off)) for i, text in enumerate(texts) for off, line in _lines(text)]
    out = [Annotation() for _ in texts]
    for doc, (i, off) in nlp.pipe(jobs, as_tuples=True, batch_size=batch_size):
        line = doc.text
        a = out[i]
        base = len(a.tok_start)
        for tok in doc:
            a.tok_start.append(off + tok.idx)
            a.tok_end.append(off + tok.idx + len(tok.text))
            a.lemma.append(tok.lemma_.lower())
            a.pos.append(tok.pos_)
            a.dep.append(tok.dep_)
            a.head.append(base + tok.head.i)
        pending = None  # a dateline or lead-in ("Brussels, 28 November 2026 –") joins the next sentence
        for sent in doc.sents:
            text = sent.text
            lead = len(text) - len(text.lstrip())
            s, e = off + sent.start_char + lead, off + sent.start_char + len(text.rstrip())
            if e <= s:
                continue
            if pending is not None:
                s, pending = pending, None
            if text.rstrip()[-1:] in _LEAD_IN:
                pending = s
                continue
            a.sentences.append((s, e))
        if pending is not None:
            a.sentences.append((pending, off + len(line.rstrip())))
        a.entities.extend((off + s, off + e, label) for s, e, label in _entities(doc))
        a.noun_chunks.extend((off + n.start_char, off + n.end_char) for n in doc.noun_chunks)
    return out
