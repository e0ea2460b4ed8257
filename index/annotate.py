"""Sentences of each release, found once at index time.

Query time needs only sentence boundaries (the reader reads a sentence with its neighbours, and the
answer is shown inside its sentence), so this is spaCy's English tokenizer with its rule-based
`sentencizer`: it keeps "Mr. Rutte" and "U.S." whole and runs at hundreds of thousands of words a
second, where the statistical pipeline (tagger, parser, entities) ran at about 5,000 — as slow as the
embedding model itself. A line break always ends a sentence in a release; a dateline or lead-in
("Brussels, 28 November 2026 –") joins the sentence after it.
"""
from __future__ import annotations

import re
from functools import lru_cache

from .types import Annotation

_LINE = re.compile(r"[^\r\n]+")
_LEAD_IN = ("–", "—", "-", ":")


@lru_cache(maxsize=1)
def load_nlp():
    """spaCy's English tokenizer with the rule-based sentencizer (loaded once per process)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def _lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines with their offsets: a line break always ends a sentence in a release."""
    return [(m.start(), m.group()) for m in _LINE.finditer(text) if m.group().strip()]


def annotate(texts: list[str], batch_size: int = 256) -> list[Annotation]:
    """Sentence boundaries of each release text; one Annotation per text, in order."""
    nlp = load_nlp()
    jobs = [(line, (i, off)) for i, text in enumerate(texts) for off, line in _lines(text)]
    out = [Annotation() for _ in texts]
    for doc, (i, off) in nlp.pipe(jobs, as_tuples=True, batch_size=batch_size):
        a = out[i]
        pending = None  # a dateline or lead-in joins the next sentence
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
            a.sentences.append((pending, off + len(doc.text.rstrip())))
    return out
