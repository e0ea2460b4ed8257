"""What the reader reads: each of the best candidate sentences with its neighbours, and what it found there.

A window is a stretch of one release (offsets into its text), so a span the reader marks in it
maps straight back to the release: the answer stays verbatim.
"""
from __future__ import annotations

from dataclasses import dataclass

from index.search import SearchIndex as IndexData  # the generation being read

from . import config
from .question import Question
from .reader import Reader
from .retrieve import Candidate, Retriever


@dataclass(frozen=True)
class Window:
    """A candidate sentence and its neighbours in one release; `cand` is the candidate that made it."""

    release_id: str
    start: int
    end: int
    cand: Candidate
    position: int = 0  # its rank among the windows of a question (0: made from the best candidate)
    missing: float = 0.0  # the rarest question word the window never uses (Retriever.missing)


@dataclass(frozen=True)
class Reading:
    """The reader's best span in a window, as offsets into the release's text."""

    window: Window
    start: int
    end: int
    score: float  # reader's start + end logit
    null: float  # reader's no-answer score for the question, over all the windows read
    cls_start: float = 0.0  # the window's own no-answer logits, from which the question's null is made
    cls_end: float = 0.0

    @property
    def margin(self) -> float:
        return self.score - self.null

    def features(self) -> dict[str, float]:
        """The signals the calibration combines: the reader's and retrieval's."""
        c = self.window.cand
        return {"margin": self.margin, "span": self.score, "null": self.null, "retrieval": c.score,
                "cosine": c.cosine, "lexical": c.lexical, "passage": c.passage, "position": self.window.position,
                "missing": self.window.missing, "cls_start": self.cls_start, "cls_end": self.cls_end}


def window_span(i: int, n_sentences: int, neighbours: int = config.WINDOW_NEIGHBOURS) -> tuple[int, int]:
    """First and last sentence of the window around sentence `i` of `n_sentences`: the one rule for the
    windows the reader reads, at query time and in training (qa.training.train)."""
    return max(i - neighbours, 0), min(i + neighbours, n_sentences - 1)


def make_windows(retriever: Retriever, cands: list[Candidate], n: int, neighbours: int = config.WINDOW_NEIGHBOURS,
                 q: Question | None = None) -> list[Window]:
    """Windows around the `n` best candidate sentences; a sentence already inside a window adds none.
    With the question `q`, each window also notes the rarest question word it never uses."""
    out: list[Window] = []
    covered: set[tuple[str, int]] = set()
    for cand in cands:
        if len(out) >= n:
            break
        rid, i = cand.sent.key
        if (rid, i) in covered:
            continue
        sents = retriever.sentences(rid)
        lo, hi = window_span(i, len(sents), neighbours)
        covered.update((rid, j) for j in range(lo, hi + 1))
        miss = retriever.missing(q, rid, lo, hi) if q is not None else 0.0
        out.append(Window(rid, sents[lo].start, sents[hi].end, cand, len(out), miss))
    return out


def read(reader: Reader, question: str, data: IndexData, windows: list[Window]) -> list[Reading]:
    """The reader's best span in each window (one forward pass), windows with no valid span left out."""
    texts = [data.releases[w.release_id].text[w.start:w.end] for w in windows]
    return [Reading(w, w.start + s.start, w.start + s.end, s.score, s.null, s.cls_start, s.cls_end)
            for w, s in zip(windows, reader.read(question, texts)) if s is not None]


def evidence_bounds(retriever: Retriever, reading: Reading) -> tuple[int, int]:
    """The sentence(s) holding the reading's span: the answer is shown inside its sentence."""
    rows = [r for r in retriever.sentences(reading.window.release_id) if r.start < reading.end and r.end > reading.start]
    if not rows:
        return reading.window.start, reading.window.end
    return rows[0].start, rows[-1].end
