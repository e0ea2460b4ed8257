"""Hybrid retrieval: dense (FAISS over chunks, plus sentence vectors) and BM25, fused.

Everything here is arithmetic over what the index built; the question's vector is the
only model output it needs. Dates are handled here too: a `DateRange` keeps the search to
releases dated inside it, and a day the question names favours releases dated that day and
sentences that carry it.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from index.store import IndexData, bm25_stemmer

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
class DateRange:
    """Releases dated from `since` to `until`: ISO days, both inclusive; None leaves that end open."""

    since: str | None = None
    until: str | None = None

    def admits(self, day: str | None) -> bool:
        """Whether a release dated `day` is inside; an undated release is inside no range."""
        if day is None:
            return False
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def describe(self) -> str:
        """'from 2024-06-01 to 2024-06-30', 'from 2024-06-01 on', 'up to 2024-06-30'."""
        if self.since and self.until:
            return f"from {self.since} to {self.until}"
        return f"from {self.since} on" if self.since else f"up to {self.until}"


@dataclass(frozen=True)
class SentenceRef:
    """One sentence of the corpus with what scoring needs."""

    row: int  # row in the sentence matrix
    release_id: str
    start: int
    end: int
    stems: frozenset
    context: frozenset = frozenset()  # stems of the sentence before it and of the release title
    bigrams: frozenset = frozenset()  # neighbouring content stems, for phrases the question repeats
    days: frozenset = frozenset()  # ISO days written in the sentence ("on 26 June" in a 2024 release)


@dataclass
class Candidate:
    """A sentence considered as evidence, with the scores that ranked it."""

    sent: SentenceRef
    score: float
    cosine: float
    lexical: float  # idf-weighted share of the question's words found in the sentence
    passage: float  # fused score of the best chunk holding it, in [0, 1]
    chunk_id: int
    dense: float = 0.0  # cosine between the question and the chunk holding the sentence
    phrase: float = 0.0  # share of the question's word pairs the sentence repeats
    novelty: float = 0.0  # how much it says beyond the question's words, in [0, 1]

    def features(self) -> dict[str, float]:
        """The signals SENTENCE_WEIGHTS combine."""
        return {"cosine": self.cosine, "lexical": self.lexical, "passage": self.passage, "phrase": self.phrase,
                "novelty": self.novelty}


def sentence_score(features: dict[str, float]) -> float:
    return sum(w * features[k] for k, w in SENTENCE_WEIGHTS.items())


class Retriever:
    """Precomputed views of one index generation for fast hybrid search."""

    def __init__(self, data: IndexData):
        import faiss

        faiss.omp_set_num_threads(1)  # searches here are tiny: threads only add start-up cost
        self.data = data
        self.stemmer = bm25_stemmer()
        self.sentences: list[SentenceRef] = []
        #: each release's own date (ISO) or None
        self.release_dates: dict[str, str | None] = {rid: r.date for rid, r in data.releases.items()}
        known = [d for d in self.release_dates.values() if d]
        mats = []
        for rid, ann in data.annotations.items():
            title = self._stems(data.releases[rid].title)
            own = self.release_dates.get(rid)
            for s, e in ann.sentences:
                text = data.releases[rid].text[s:e]
                seq = self._stem_seq(text)
                stems = frozenset(seq)
                prev = self.sentences[-1].stems if self.sentences and self.sentences[-1].release_id == rid else title
                days = frozenset(resolve_days(day_mentions(text), known, int(own[:4]) if own else None))
                self.sentences.append(SentenceRef(len(self.sentences), rid, s, e, stems, (prev | title) - stems,
                                                  frozenset(zip(seq, seq[1:])), days))
            mats.append(data.sentence_vectors[rid])
        dim = data.vectors.d
        self.matrix = np.vstack(mats).astype(np.float32) if mats else np.zeros((0, dim), np.float32)
        df = Counter(st for ref in self.sentences for st in ref.stems)
        n = max(len(self.sentences), 1)
        self.idf = {st: math.log(1 + n / c) for st, c in df.items()}
        self.max_idf = math.log(1 + n)
        # chunk -> sentence rows inside it, and sentence row -> chunks holding it
        by_release: dict[str, list[SentenceRef]] = {}
        for ref in self.sentences:
            by_release.setdefault(ref.release_id, []).append(ref)
        self.chunk_rows: dict[int, list[int]] = {}
        self.row_chunks: dict[int, list[int]] = {}
        for cid, c in data.chunks.items():
            rows = [r.row for r in by_release.get(c.release_id, ()) if r.start < c.end and r.end > c.start]
            self.chunk_rows[cid] = rows
            for r in rows:
                self.row_chunks.setdefault(r, []).append(cid)
        self.bm25_ids = np.asarray(data.bm25_ids, dtype=np.int64)
        # the release of each BM25 row and of each sentence row, so a date range filters them with one np.isin
        self.bm25_release = np.array([c.release_id if (c := data.chunks.get(int(cid))) else "" for cid in self.bm25_ids],
                                     dtype=str)
        self.sentence_release = np.array([ref.release_id for ref in self.sentences], dtype=str)
        self.chunk_days = {cid: frozenset().union(*(self.sentences[r].days for r in rows))
                           for cid, rows in self.chunk_rows.items()}

    # -- dates ---------------------------------------------------------------
    def releases_in(self, window: DateRange) -> set[str]:
        """Ids of the releases dated inside `window`."""
        return {rid for rid, d in self.release_dates.items() if window.admits(d)}

    def dated_span(self) -> tuple[str, str] | None:
        """The first and last release dates of the index, or None when no release is dated."""
        known = sorted(d for d in self.release_dates.values() if d)
        return (known[0], known[-1]) if known else None

    def question_days(self, q: Question) -> frozenset[str]:
        """The ISO days `q` names; a day without a year takes the year of the releases (see resolve_days)."""
        return frozenset(resolve_days(q.days, self.release_dates.values()))

    def _stem_seq(self, text: str) -> list[str]:
        return self.stemmer.stemWords([w for w in words(text) if w not in STOPWORDS])

    def _stems(self, text: str) -> frozenset:
        return frozenset(self._stem_seq(text))

    def stems(self, toks) -> list[str]:
        return self.stemmer.stemWords(list(toks))

    def idf_of(self, stem: str) -> float:
        return self.idf.get(stem, self.max_idf)

    def chunk_scores(self, qvec: np.ndarray, q: Question, k: int = 20, allowed: set[str] | None = None,
                     days: frozenset[str] = frozenset()) -> tuple[dict[int, float], dict[int, float]]:
        """Fused (RRF) chunk scores from FAISS and BM25, scaled so the best is 1, and the dense cosines.

        `allowed`: release ids the chunks must come from (None: all). `days`: ISO days the question
        names; the chunks of releases dated on one of them, then those carrying one, are fused in as a
        third ranking.
        """
        import faiss

        n = self.data.vectors.ntotal
        fused: dict[int, float] = {}
        dense_sims: dict[int, float] = {}
        params = None
        if allowed is not None:
            ids = np.array([cid for cid, c in self.data.chunks.items() if c.release_id in allowed], dtype=np.int64)
            n = min(n, len(ids))
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids)) if len(ids) else None
        if n:
            sims, ids = self.data.vectors.search(qvec, min(k, n), params=params)
            for rank, (sim, cid) in enumerate(zip(sims[0], ids[0])):
                if cid >= 0:
                    fused[int(cid)] = fused.get(int(cid), 0.0) + 1.0 / (RRF_K + rank)
                    dense_sims[int(cid)] = float(sim)
        stems = [s for s in self.stems(q.content + q.extra)]
        if stems and len(self.bm25_ids):
            scores = self.data.bm25.get_scores(stems)
            if allowed is not None:
                scores = np.where(np.isin(self.bm25_release, list(allowed)), scores, 0.0)
            top = np.argsort(-scores)[:k]
            for rank, i in enumerate(top):
                if scores[i] <= 0:
                    break
                cid = int(self.bm25_ids[i])
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
        if days:
            for rank, cid in enumerate(self._day_ranking(days, fused, allowed)[:k]):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
        best = max(fused.values(), default=1.0)
        return {cid: v / best for cid, v in fused.items()}, dense_sims

    def _day_ranking(self, days: frozenset[str], fused: dict[int, float], allowed: set[str] | None) -> list[int]:
        """Chunks whose release is dated on one of `days` (best fused first), then chunks carrying one."""
        def key(cid: int) -> tuple:
            dated = self.release_dates.get(self.data.chunks[cid].release_id) in days
            return (not dated, -fused.get(cid, 0.0), cid)

        hits = [cid for cid, c in self.data.chunks.items()
                if (allowed is None or c.release_id in allowed)
                and (self.release_dates.get(c.release_id) in days or self.chunk_days.get(cid, frozenset()) & days)]
        return sorted(hits, key=key)

    def candidates(self, qvec: np.ndarray, q: Question, n_chunks: int = 8, n_sent: int = 8,
                   boost_releases: dict[str, float] | None = None,
                   window: DateRange | None = None) -> tuple[list[Candidate], dict[int, float]]:
        """Candidate evidence sentences, best first, and the fused chunk scores.

        With a `window`, only releases dated inside it are searched. A day the question names
        favours the releases dated that day and the sentences carrying it (DAY_BOOST).
        """
        allowed = self.releases_in(window) if window is not None else None
        days = self.question_days(q)
        chunk, dense = self.chunk_scores(qvec, q, allowed=allowed, days=days)
        top_chunks = sorted(chunk, key=chunk.get, reverse=True)[:n_chunks]
        rows = {r for cid in top_chunks for r in self.chunk_rows.get(cid, ())}
        if len(self.matrix):
            sims = self.matrix @ qvec[0]
            pick = sims
            if allowed is not None or days:
                inside = np.isin(self.sentence_release, list(allowed)) if allowed is not None else True
                pick = np.where(inside, sims, -np.inf)
                if days:  # the sentences carrying a day the question names are candidates too
                    carrying = np.fromiter((bool(ref.days & days) for ref in self.sentences), bool, len(self.sentences))
                    carried = np.where(carrying, pick, -np.inf)
                    rows.update(int(i) for i in np.argsort(-carried)[:n_sent] if np.isfinite(carried[i]))
            top = np.argpartition(-pick, min(n_sent, len(pick) - 1))[:n_sent]
            rows.update(int(i) for i in top if np.isfinite(pick[i]))
        else:
            sims = np.zeros(0)
        qstems = self.stems(q.content)
        xstems = [s for s in self.stems(q.extra) if s not in qstems]
        xw = q.extra_weight
        total = sum(self.idf_of(s) for s in qstems) + xw * sum(self.idf_of(s) for s in xstems) or 1.0
        qbigrams = set(zip(qstems, qstems[1:]))
        qset = set(qstems) | set(xstems)
        out = []
        for r in rows:
            ref = self.sentences[r]
            # words of the question found in the sentence count fully, in its context (the sentence
            # before, the title: "The library was founded..." after "...library of Ghent...") half
            lex = (sum(self.idf_of(s) * (1.0 if s in ref.stems else CONTEXT_WEIGHT if s in ref.context else 0.0)
                       for s in qstems)
                   + xw * sum(self.idf_of(s) for s in xstems if s in ref.stems or s in ref.context)) / total
            cids = self.row_chunks.get(r, [])
            best_c = max(cids, key=lambda c: chunk.get(c, 0.0)) if cids else -1
            pas = chunk.get(best_c, 0.0)
            cos = float(sims[r])
            phrase = len(qbigrams & ref.bigrams) / len(qbigrams) if qbigrams else 0.0
            # a sentence that only restates the question has no answer to give
            novelty = min(len(ref.stems) - len(ref.stems & qset), 6) / 6
            cand = Candidate(ref, 0.0, cos, lex, pas, best_c, max((dense.get(c, 0.0) for c in cids), default=0.0),
                             phrase, novelty)
            cand.score = sentence_score(cand.features()) + (boost_releases or {}).get(ref.release_id, 0.0)
            if days:
                cand.score += (DAY_BOOST["release"] * (self.release_dates.get(ref.release_id) in days)
                               + DAY_BOOST["sentence"] * bool(ref.days & days))
            out.append(cand)
        out.sort(key=lambda c: c.score, reverse=True)
        return out, chunk
