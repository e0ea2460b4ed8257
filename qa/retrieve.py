"""Hybrid retrieval: dense (FAISS over chunks, plus sentence vectors) and BM25, fused.

Everything here is arithmetic over what the index built; the question's vector is the
only model output it needs. Dates are handled here too: a `DateRange` keeps the search to
releases dated inside it, and a day the question names favours releases dated that day and
sentences that carry it. So are sources: a `SourceFilter` keeps the search to releases from
the sources it names.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache

import numpy as np

from index.store import IndexData, bm25_stemmer, day_number
from index.types import DateRange, SourceFilter, fold_source

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
class SourceTable:
    """The sources of one index generation: each source once (as most of its releases spell it), its
    number of releases, and each chunk row's source as a code (-1 where the release names none)."""

    names: tuple[str, ...]  # sorted case-insensitively; code i is names[i]
    counts: tuple[int, ...]
    codes: dict  # folded name -> code
    row_codes: np.ndarray  # int32, one per chunk row

    @classmethod
    def of(cls, release_sources: list[str], release_pos: np.ndarray) -> "SourceTable":
        """From each release's source (in corpus order) and each chunk row's release position."""
        spellings: dict[str, dict[str, int]] = {}  # folded -> spelling -> releases
        key_of: dict[str, str] = {}  # raw source -> folded (each distinct raw value folded once)
        for raw in release_sources:
            key = key_of.get(raw)
            if key is None:
                key = key_of[raw] = fold_source(raw)
            if key:
                shown = spellings.setdefault(key, {})
                name = " ".join(raw.split())
                shown[name] = shown.get(name, 0) + 1
        order = sorted(spellings)
        codes = {k: i for i, k in enumerate(order)}
        names = tuple(max(spellings[k], key=spellings[k].get) for k in order)  # a tie: the first release's
        counts = tuple(sum(spellings[k].values()) for k in order)
        raw_code = {raw: codes.get(key, -1) for raw, key in key_of.items()}
        release_codes = np.fromiter((raw_code[raw] for raw in release_sources), np.int32, len(release_sources))
        pos = np.asarray(release_pos, dtype=np.int64)
        row_codes = release_codes[pos] if len(release_codes) else np.full(len(pos), -1, np.int32)
        return cls(names, counts, codes, row_codes)


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
    """Hybrid search over one index generation.

    Nothing here grows with the corpus beyond what the index memory-maps: the chunk rows (id, release
    date), the FAISS index and BM25. Sentences are read and scored only for the chunks a question
    retrieves, so a question costs the same on nine releases as on a million.
    """

    def __init__(self, data: IndexData):
        import faiss

        faiss.omp_set_num_threads(1)  # searches here are tiny: threads only add start-up cost
        self.data = data
        self.stemmer = bm25_stemmer()
        self.chunk_ids = np.asarray(data.rows["chunk_id"], dtype=np.int64)  # BM25 documents are these rows
        self.row_days = data.rows["day"]
        known = [int(d) for d in np.unique(self.row_days) if d >= 0]
        #: ISO dates of the index's releases (each distinct date once)
        self.dates = [date.fromordinal(d).isoformat() for d in known]
        scores = data.bm25.scores
        self.n_docs = max(int(scores["num_docs"]), 1)
        self._indptr = scores["indptr"]
        self._vocab = data.bm25.vocab_dict
        self.max_idf = math.log(1 + self.n_docs)
        self._sentences = lru_cache(maxsize=4096)(self._release_sentences)

    # -- dates ---------------------------------------------------------------
    def rows_in(self, dates: DateRange) -> np.ndarray:
        """A mask over the chunk rows: True where the chunk's release is dated inside `dates`."""
        lo = day_number(dates.since) if dates.since else 0
        hi = day_number(dates.until) if dates.until else np.iinfo(np.int32).max
        return (self.row_days >= lo) & (self.row_days <= hi) & (self.row_days >= 0)

    def allowed_rows(self, dates: DateRange | None = None, sources: SourceFilter | None = None) -> np.ndarray | None:
        """The mask over the chunk rows that both filters admit; None when there is neither."""
        masks = ([] if dates is None else [self.rows_in(dates)]) + ([] if sources is None else [self.rows_from(sources)])
        if not masks:
            return None
        return masks[0] if len(masks) == 1 else masks[0] & masks[1]

    def holds_releases_in(self, dates: DateRange) -> bool:
        """Whether any release is dated inside `dates`."""
        return bool(self.rows_in(dates).any())

    def dated_span(self) -> tuple[str, str] | None:
        """The first and last release dates of the index, or None when no release is dated."""
        return (self.dates[0], self.dates[-1]) if self.dates else None

    def dated_span_of(self, mask: np.ndarray) -> tuple[str, str] | None:
        """The first and last dates of the releases of the chunk rows in `mask`, or None when none is dated."""
        days = self.row_days[mask]
        days = days[days >= 0]
        if not len(days):
            return None
        return date.fromordinal(int(days.min())).isoformat(), date.fromordinal(int(days.max())).isoformat()

    def question_days(self, q: Question) -> frozenset[str]:
        """The ISO days `q` names; a day without a year takes the year of the releases (see resolve_days)."""
        return frozenset(resolve_days(q.days, self.dates))

    # -- sources -------------------------------------------------------------
    @cached_property
    def source_table(self) -> SourceTable:
        """The index's sources (read once per generation, when first needed)."""
        return SourceTable.of(self.data.releases.sources(), self.data.rows["release_pos"])

    def sources(self) -> list[tuple[str, int]]:
        """(source, number of releases) for each source of the index, by name; releases naming none left out."""
        t = self.source_table
        return list(zip(t.names, t.counts))

    def source_filter(self, names) -> tuple[SourceFilter, list[str]]:
        """The filter for `names` (matched case-insensitively, whitespace folded), and the names the index does
        not have."""
        t = self.source_table
        keys, unknown = [], []
        for name in names:
            key = fold_source(name)
            if key in t.codes:
                keys.append(key)
            else:
                unknown.append(" ".join(str(name).split()))
        keys = list(dict.fromkeys(keys))
        return SourceFilter(frozenset(keys), tuple(t.names[t.codes[k]] for k in keys)), unknown

    def rows_from(self, sources: SourceFilter) -> np.ndarray:
        """A mask over the chunk rows: True where the chunk's release is from one of `sources`."""
        return self._source_masks(sources.keys)

    @cached_property
    def _source_masks(self) -> Callable[[frozenset[str]], np.ndarray]:
        """The masks of the source sets asked for lately, kept with this generation (a byte a chunk row)."""
        return lru_cache(maxsize=16)(self._source_mask)

    def _source_mask(self, keys: frozenset[str]) -> np.ndarray:
        t = self.source_table
        mask = np.isin(t.row_codes, np.fromiter((t.codes[k] for k in keys if k in t.codes), np.int32))
        mask.flags.writeable = False  # cached and shared: combine with &, never in place
        return mask

    # -- words ---------------------------------------------------------------
    def _stem_seq(self, text: str) -> list[str]:
        return self.stemmer.stemWords([w for w in words(text) if w not in STOPWORDS])

    def _stems(self, text: str) -> frozenset:
        return frozenset(self._stem_seq(text))

    def stems(self, toks) -> list[str]:
        return self.stemmer.stemWords(list(toks))

    def idf_of(self, stem: str) -> float:
        """Inverse document frequency over the chunks, from BM25's own counts."""
        col = self._vocab.get(stem)
        if col is None:
            return self.max_idf
        df = int(self._indptr[col + 1] - self._indptr[col])
        return math.log(1 + self.n_docs / df) if df else self.max_idf

    def missing(self, q: Question, release_id: str, first: int, last: int) -> float:
        """The rarest of the question's words that sentences `first`..`last` of a release (with the title and
        the sentence before) never use, as idf / max idf; 0 when they use them all. A window that answers
        "Who is the Prime Minister of Japan?" mentions Japan: one that names Estonia's does not."""
        rows = self.sentences(release_id)[first:last + 1]
        seen = frozenset().union(*(r.stems | r.context for r in rows)) if rows else frozenset()
        return max((self.idf_of(s) for s in self.stems(q.content) if s not in seen), default=0.0) / self.max_idf

    # -- sentences -----------------------------------------------------------
    def _release_sentences(self, release_id: str) -> tuple[SentenceRef, ...]:
        release = self.data.releases[release_id]
        title = self._stems(release.title)
        own = release.date
        out, prev = [], title
        for i, (s, e) in enumerate(self.data.annotations[release_id].sentences):
            text = release.text[s:e]
            seq = self._stem_seq(text)
            stems = frozenset(seq)
            days = frozenset(resolve_days(day_mentions(text), self.dates, int(own[:4]) if own else None))
            out.append(SentenceRef(release_id, i, s, e, stems, (prev | title) - stems, frozenset(zip(seq, seq[1:])),
                                   days))
            prev = stems
        return tuple(out)

    def sentences(self, release_id: str) -> tuple[SentenceRef, ...]:
        """A release's sentences, in order (read and analysed once, then cached)."""
        return self._sentences(release_id)

    def chunk_sentences(self, chunk_id: int) -> list[SentenceRef]:
        """The sentences that overlap a chunk."""
        c = self.data.chunks[chunk_id]
        return [r for r in self.sentences(c.release_id) if r.start < c.end and r.end > c.start]

    # -- search --------------------------------------------------------------
    def chunk_scores(self, qvec: np.ndarray, q: Question, k: int = 20, allowed: np.ndarray | None = None,
                     days: frozenset[str] = frozenset()) -> tuple[dict[int, float], dict[int, float]]:
        """Fused (RRF) chunk scores from FAISS and BM25, scaled so the best is 1, and the dense cosines.

        `allowed`: a mask over the chunk rows (None: all). `days`: ISO days the question names; the
        chunks of releases dated on one of them, then retrieved chunks carrying one, are fused in as
        a third ranking.
        """
        from index import vectors as vector_index

        fused: dict[int, float] = {}
        dense_sims: dict[int, float] = {}
        ids = self.chunk_ids if allowed is None else self.chunk_ids[allowed]
        if len(ids):
            sims, found = vector_index.search(self.data.vectors, qvec, min(k, len(ids)),
                                              allowed_ids=None if allowed is None else ids)
            for rank, (sim, cid) in enumerate(zip(sims[0], found[0])):
                if cid >= 0:
                    fused[int(cid)] = fused.get(int(cid), 0.0) + 1.0 / (RRF_K + rank)
                    dense_sims[int(cid)] = float(sim)
        stems = self.stems(q.content + q.extra)
        if stems and len(self.chunk_ids):
            scores = self.data.bm25.get_scores(stems)
            if allowed is not None:
                scores = np.where(allowed, scores, 0.0)
            top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            for rank, i in enumerate(top):
                if scores[i] <= 0:
                    break
                cid = int(self.chunk_ids[i])
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
        dated = np.isin(self.row_days, [day_number(d) for d in days])
        if allowed is not None:
            dated &= allowed
        dated_ids = self.chunk_ids[dated]
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
        allowed = self.allowed_rows(dates, sources)
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
                cand.score += (DAY_BOOST["release"] * (self.data.releases[ref.release_id].date in days)
                               + DAY_BOOST["sentence"] * bool(ref.days & days))
            out.append(cand)
        out.sort(key=lambda c: c.score, reverse=True)
        return out, chunk
