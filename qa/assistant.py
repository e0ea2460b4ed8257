"""The assistant: question (+ history) -> retrieve -> extract -> Answer.

One Assistant serves one index folder. It checks between questions whether a newer
index generation has been swapped in and moves to it; a question already running keeps
the generation it started with.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index import config, store
from index.errors import IndexStoreError
from index.releases import Release

from . import confidence
from .answer import Answer, Source
from .extract import SentenceView, best_span
from .followup import normalise_history, previous_answers, with_context
from .question import analyse
from .retrieve import Retriever

MAX_QUESTION_CHARS = 1000
N_SOURCES = 5
N_EVIDENCE = 4  # candidate sentences given to span extraction


def evidence_spans(data: store.IndexData, retriever: Retriever, q, cands) -> list[tuple]:
    """The best answer span (or None) of each of the top candidate sentences."""
    qstems = set(retriever.stems(q.content))
    out = []
    for cand in cands[:N_EVIDENCE]:
        ref = cand.sent
        view = SentenceView(data.releases[ref.release_id].text, data.annotations[ref.release_id], ref.t0, ref.t1,
                            qstems, retriever.stems)
        out.append((cand, best_span(q, view, ref.start, ref.end)))
    return out


class InvalidQuestion(ValueError):
    """The question cannot be asked as given (empty, too long)."""


@dataclass(frozen=True)
class _Generation:
    path: Path
    data: store.IndexData
    retriever: Retriever


def check_question(question) -> str:
    if not isinstance(question, str):
        raise InvalidQuestion("The question must be text.")
    text = " ".join(question.split())
    if not text:
        raise InvalidQuestion("The question is empty; type a question about the releases.")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestion(
            f"The question is {len(text)} characters long; keep it under {MAX_QUESTION_CHARS} characters.")
    return text


class Assistant:
    """Answers questions from one index folder."""

    def __init__(self, index_dir: str | os.PathLike | None = None, threshold: float | None = None):
        self.index_dir = config.index_dir(index_dir)
        self.threshold = confidence.THRESHOLD if threshold is None else threshold
        self._swap = threading.Lock()  # held only while a new generation is loaded, never across a question
        self._gen = self._load()

    # -- index generations -------------------------------------------------
    def _load(self) -> _Generation:
        data = store.load(self.index_dir)
        return _Generation(data.path, data, Retriever(data))

    def _current(self) -> _Generation:
        """The newest generation on disk (loaded when `current` has moved), else the one in use."""
        gen = self._gen
        newest = store.current_generation(self.index_dir)
        if newest is not None and newest.name != gen.path.name:
            with self._swap:
                if self._gen.path.name != newest.name:
                    try:
                        self._gen = self._load()
                    except IndexStoreError:
                        pass  # a broken new index is not served; keep answering from the one we have
                gen = self._gen
        return gen

    def reload(self) -> None:
        """Load the current generation now (normally done lazily between questions)."""
        self._current()

    # -- public API --------------------------------------------------------
    def ask(self, question: str, history=None) -> Answer:
        """Answer `question`; `history` is a list of earlier (question, answer) pairs."""
        return self.ask_traced(question, history)[0]

    def ask_traced(self, question: str, history=None) -> tuple[Answer, dict]:
        """`ask`, plus what the evaluation needs: the confidence features and the span even when abstaining."""
        from index.embedder import encode_query

        text = check_question(question)
        gen = self._current()
        hist = normalise_history(history)
        q, query_text = with_context(analyse(text), hist)
        qvec = encode_query(query_text)
        boost = self._history_boost(gen.data, hist)
        cands, chunk_scores = gen.retriever.candidates(qvec, q, boost_releases=boost)
        if not cands:
            return Answer(text, "", "", False, 0.0, [], message="The index holds no passages to search."), {}

        cand, span = max(evidence_spans(gen.data, gen.retriever, q, cands),
                         key=lambda cs: confidence.rank_score(cs[0], cs[1], q))
        conf = confidence.score(cand, span, q)
        sources = self._sources(gen, cand, chunk_scores)
        release = gen.data.releases[cand.sent.release_id]
        ev_s, ev_e = cand.sent.start, cand.sent.end
        trace = {"features": confidence.features(cand, span, q),
                 "span_text": release.text[span.start:span.end] if span else ""}
        answered = span is not None and conf >= self.threshold
        if not answered:
            return Answer(text, "", release.text[ev_s:ev_e], False, conf, sources, release.release_id,
                          None, None, ev_s, ev_e,
                          message="The releases do not seem to answer this question; the closest passages are shown."), trace
        return Answer(text, release.text[span.start:span.end], release.text[ev_s:ev_e], True, conf, sources,
                      release.release_id, span.start, span.end, ev_s, ev_e), trace

    def status(self) -> dict:
        """How many releases and chunks, when built, and whether the corpus changed since."""
        from index.build import corpus_changed

        gen = self._current()
        m = gen.data.manifest
        corpus = m.get("corpus_dir") or str(config.corpus_dir())
        try:
            stale = corpus_changed(corpus, self.index_dir)
        except Exception:
            stale = True
        return {"releases": len(gen.data.releases), "chunks": len(gen.data.chunks), "built_at": m.get("built_at", ""),
                "corpus_dir": corpus, "index_dir": str(self.index_dir), "stale": stale, "model": m.get("model", ""),
                "generation": gen.path.name}

    def release(self, release_id: str) -> Release:
        """The whole release, for showing it with the answer marked."""
        try:
            return self._current().data.releases[release_id]
        except KeyError:
            raise KeyError(f"No release with id {release_id!r} in the index.") from None

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def _history_boost(data: store.IndexData, hist) -> dict[str, float]:
        """Releases that hold an earlier answer are where a follow-up most likely continues."""
        answers = [a.casefold() for a in previous_answers(hist) if len(a) >= 3]
        if not answers:
            return {}
        return {rid: 0.15 for rid, r in data.releases.items() if any(a in r.text.casefold() for a in answers)}

    @staticmethod
    def _sources(gen: _Generation, cand, chunk_scores: dict[int, float]) -> list[Source]:
        """Ranked passages; the first holds the answer's sentence."""
        ranked = sorted(chunk_scores, key=chunk_scores.get, reverse=True)
        first = cand.chunk_id if cand.chunk_id in gen.data.chunks else None
        if first is None:  # the sentence came from sentence search only: find its chunk
            first = next((cid for cid in gen.retriever.row_chunks.get(cand.sent.row, ())), ranked[0] if ranked else None)
        order = ([first] if first is not None else []) + [c for c in ranked if c != first]
        out = []
        for cid in order[:N_SOURCES]:
            c = gen.data.chunks[cid]
            r = gen.data.releases[c.release_id]
            out.append(Source(r.release_id, r.title, r.date, c.text, round(float(np.clip(chunk_scores.get(cid, 0.0), 0, 1)), 4),
                              c.start, c.end, r.path))
        return out
