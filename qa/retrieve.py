"""Hybrid retrieval: dense and BM25 top-k over chunks, fused by reciprocal rank, then sentence scoring.

Everything here is arithmetic over what the index built, asked through its query API
(`index.search`); the question's vector is the only model output it needs. A `DateRange` and a
`SourceFilter` become the index's row mask; a day the question names favours releases dated that
day and sentences that carry it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from index.search import SearchIndex
from index.types import DateRange, SourceFilter

from .question import STOPWORDS, Question, day_mentions, resolve_days, words

RRF_K = 60  # reciprocal-rank-fusion constant (Cormack et al.)
#: how a candidate sentence is ranked: its cosine with the question, its idf-weighted word overlap,
#: its passage's fused score, the share of the question's word pairs it repeats, and how much it says
#: beyond the question's own words (the features of `Candidate.features`)
SENTENCE_WEIGHTS = {"cosine": 1.0, "lexical": 0.8, "passage": 0.3, "phrase": 0.3, "novelty": 0.2}
#: weight of a question word found only next to a sentence (previous sentence, title)
CONTEXT_WEIGHT = 0.3
#: added to a candidate sentence's score when the question names a day ("on 26 June") and the
#: sentence's release is dated that day, or the sentence itself carries that day
DAY_BOOST = {"release": 0.15, "sentence": 0.1}


@dataclass(frozen=True)
class SentenceRef:
    """One sentence of a release, with what scoring needs (computed when the sentence is a candidate)."""

    release_id: str
    index: int  # position among its release's sentences
    start: int
    end: int
    stems: frozenset
    context: frozenset = frozenset()  # stems of the sentence before it and of the release title
    bigrams: frozenset = frozenset()  # neighbouring content stems, for phrases the question repeats
    days: frozenset = frozenset()  # ISO days written in the sentence ("on 26 June" in a 2024 release)

    @property
    def key(self) -> tuple[str, int]:
        return self.release_id, self.index


@dataclass
class Candidate:
    """A sentence considered as evidence, with the scores that ranked it."""

    sent: SentenceRef
    score: float
    cosine: float  # cosine between the question and the best chunk holding the sentence
    lexical: float  # idf-weighted share of the question's words found in the sentence
    passage: float  # fused score of the best chunk holding it, in [0, 1]
    chunk_id: int
    phrase: float = 0.0  # share of the question's word pairs the sentence repeats
    novelty: float = 0.0  # how much it says beyond the question's words, in [0, 1]

    def features(self) -> dict[str, float]:
        """The signals SENTENCE_WEIGHTS combine."""
        return {"cosine": self.cosine, "lexical": self.lexical, "passage": self.passage, "phrase": self.phrase,
                "novelty": self.novelty}


def sentence_score(features: dict[str, float]) -> float:
    return sum(w * features[k] for k, w in SENTENCE_WEIGHTS.items())


class Retriever:
    """Hybrid search over one index generation, through its query API (`index.search.SearchIndex`).

    Sentences are read and scored only for the chunks a question retrieves, so a question costs the same
    on nine releases as on a million.
    """

    def __init__(self, index: SearchIndex):
        self.index = index
        self._sentences = lru_cache(maxsize=4096)(self._release_sentences)

    def question_days(self, q: Question) -> frozenset[str]:
        """The ISO days `q` names; a day without a year takes the year of the releases (see resolve_days)."""
        return frozenset(resolve_days(q.days, self.index.dates))

    # -- words ---------------------------------------------------------------
    def _stem_seq(self, text: str) -> list[str]:
        return self.index.stem(w for w in words(text) if w not in STOPWORDS)

    def _stems(self, text: str) -> frozenset:
        return frozenset(self._stem_seq(text))

    def stems(self, toks) -> list[str]:
        return self.index.stem(toks)

    def idf_of(self, stem: str) -> float:
        """Inverse document frequency over the chunks (from the counts the index stored at build time)."""
        return self.index.idf(stem)

    def missing(self, q: Question, release_id: str, first: int, last: int) -> float:
        """The rarest of the question's words that sentences `first`..`last` of a release (with the title and
        the sentence before) never use, as idf / max idf; 0 when they use them all. A window that answers
        "Who is the Prime Minister of Japan?" mentions Japan: one that names Estonia's does not."""
        rows = self.sentences(release_id)[first:last + 1]
        seen = frozenset().union(*(r.stems | r.context for r in rows)) if rows else frozenset()
        return max((self.idf_of(s) for s in self.stems(q.content) if s not in seen), default=0.0) / self.index.max_idf

    # -- sentences -----------------------------------------------------------
    def _release_sentences(self, release_id: str) -> tuple[SentenceRef, ...]:
        release = self.index.releases[release_id]
        title = self._stems(release.title)
        own = release.date
        out, prev = [], title
        for i, (s, e) in enumerate(self.index.sentences(release_id)):
            text = release.text[s:e]
            seq = self._stem_seq(text)
            stems = frozenset(seq)
            days = frozenset(resolve_days(day_mentions(text), self.index.dates, int(own[:4]) if own else None))
            out.append(SentenceRef(release_id, i, s, e, stems, (prev | title) - stems, frozenset(zip(seq, seq[1:])),
                                   days))
            prev = stems
        return tuple(out)

    def sentences(self, release_id: str) -> tuple[SentenceRef, ...]:
        """A release's sentences, in order (read and analysed once, then cached)."""
        return self._sentences(release_id)

    def chunk_sentences(self, chunk_id: int) -> list[SentenceRef]:
        """The sentences that overlap a chunk."""
        c = self.index.chunks[chunk_id]
        return [r for r in self.sentences(c.release_id) if r.start < c.end and r.end > c.start]

    # -- search --------------------------------------------------------------
    def chunk_scores(self, qvec: np.ndarray, q: Question, k: int = 20, allowed: np.ndarray | None = None,
                     days: frozenset[str] = frozenset()) -> tuple[dict[int, float], dict[int, float]]:
        """Fused (RRF) chunk scores from FAISS and BM25, scaled so the best is 1, and the dense cosines.

        `allowed`: a mask over the chunk rows (None: all). `days`: ISO days the question names; the
        chunks of releases dated on one of them, then retrieved chunks carrying one, are fused in as
        a third ranking.
        """
        fused: dict[int, float] = {}
        dense_sims: dict[int, float] = {}
        for rank, (cid, sim) in enumerate(self.index.dense(qvec, k, allowed)):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
            dense_sims[cid] = sim
        for rank, (cid, _) in enumerate(self.index.lexical(self.stems(q.content + q.extra), k, allowed)):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
        if days:
            for rank, cid in enumerate(self._day_ranking(days, fused, allowed, k)):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
        best = max(fused.values(), default=1.0)
        return {cid: v / best for cid, v in fused.items()}, dense_sims

    def _day_ranking(self, days: frozenset[str], fused: dict[int, float], allowed: np.ndarray | None,
                     k: int) -> list[int]:
        """Up to `k` chunks: those of releases dated on one of `days` (retrieved ones first), then retrieved
        chunks that carry one of the days."""
        dated = self.index.rows_dated_on(days)
        if allowed is not None:
            dated &= allowed
        dated_ids = self.index.chunk_ids[dated]
        dated_set = set(dated_ids.tolist())
        retrieved = sorted((cid for cid in fused if cid in dated_set), key=lambda c: (-fused[c], c))
        first = set(retrieved)
        out = retrieved + [int(c) for c in np.sort(dated_ids) if int(c) not in first][:max(k - len(retrieved), 0)]
        chosen = set(out)
        carrying = [cid for cid in sorted(fused, key=lambda c: (-fused[c], c))
                    if cid not in chosen and any(r.days & days for r in self.chunk_sentences(cid))]
        return (out + carrying)[:k]

    def candidates(self, qvec: np.ndarray, q: Question, n_chunks: int = 8,
                   boost: Callable[[str], float] | None = None,
                   dates: DateRange | None = None,
                   sources: SourceFilter | None = None) -> tuple[list[Candidate], dict[int, float]]:
        """Candidate evidence sentences (those of the best chunks), best first, and the fused chunk scores.

        With `dates`, only releases dated inside that range are searched; with `sources`, only releases from
        those sources (both: releases that are both). A day the question names favours
        the releases dated that day and the sentences carrying it (DAY_BOOST). `boost(release_id)`
        adds to the score of a release's sentences (a follow-up's earlier answer, say).
        """
        allowed = self.index.allowed_rows(dates, sources)
        days = self.question_days(q)
        chunk, dense = self.chunk_scores(qvec, q, allowed=allowed, days=days)
        top_chunks = sorted(chunk, key=lambda c: (-chunk[c], c))[:n_chunks]
        # each sentence of those chunks, with the best chunk that holds it
        holder: dict[tuple[str, int], tuple[SentenceRef, int]] = {}
        for cid in top_chunks:
            for ref in self.chunk_sentences(cid):
                have = holder.get(ref.key)
                if have is None or chunk[cid] > chunk[have[1]]:
                    holder[ref.key] = (ref, cid)
        qstems = self.stems(q.content)
        xstems = [s for s in self.stems(q.extra) if s not in qstems]
        xw = q.extra_weight
        total = sum(self.idf_of(s) for s in qstems) + xw * sum(self.idf_of(s) for s in xstems) or 1.0
        qbigrams = set(zip(qstems, qstems[1:]))
        qset = set(qstems) | set(xstems)
        boosts: dict[str, float] = {}
        out = []
        for ref, cid in holder.values():
            # words of the question found in the sentence count fully, in its context (the sentence
            # before, the title: "The library was founded..." after "...library of Ghent...") less
            lex = (sum(self.idf_of(s) * (1.0 if s in ref.stems else CONTEXT_WEIGHT if s in ref.context else 0.0)
                       for s in qstems)
                   + xw * sum(self.idf_of(s) for s in xstems if s in ref.stems or s in ref.context)) / total
            phrase = len(qbigrams & ref.bigrams) / len(qbigrams) if qbigrams else 0.0
            # a sentence that only restates the question has no answer to give
            novelty = min(len(ref.stems) - len(ref.stems & qset), 6) / 6
            cand = Candidate(ref, 0.0, dense.get(cid, 0.0), lex, chunk.get(cid, 0.0), cid, phrase, novelty)
            cand.score = sentence_score(cand.features())
            if boost is not None:
                if ref.release_id not in boosts:
                    boosts[ref.release_id] = boost(ref.release_id)
                cand.score += boosts[ref.release_id]
            if days:
                cand.score += (DAY_BOOST["release"] * (self.index.releases[ref.release_id].date in days)
                               + DAY_BOOST["sentence"] * bool(ref.days & days))
            out.append(cand)
        out.sort(key=lambda c: c.score, reverse=True)
        return out, chunk
