"""Hybrid retrieval: dense (FAISS over chunks, plus sentence vectors) and BM25, fused.

Everything here is arithmetic over what the index built; the question's vector is the
only model output it needs.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from index.store import IndexData, bm25_stemmer

from .question import STOPWORDS, Question, words

RRF_K = 60  # reciprocal-rank-fusion constant (Cormack et al.)
#: how a candidate sentence is ranked: its cosine with the question, its idf-weighted word overlap,
#: its passage's fused score, the share of the question's word pairs it repeats, and how much it says
#: beyond the question's own words (the features of `Candidate.features`)
SENTENCE_WEIGHTS = {"cosine": 1.0, "lexical": 0.8, "passage": 0.3, "phrase": 0.3, "novelty": 0.2}
#: weight of a question word found only next to a sentence (previous sentence, title)
CONTEXT_WEIGHT = 0.3


@dataclass(frozen=True)
class SentenceRef:
    """One sentence of the corpus with what scoring and extraction need."""

    row: int  # row in the sentence matrix
    release_id: str
    start: int
    end: int
    t0: int  # its tokens: range(t0, t1) in the release's annotation
    t1: int
    stems: frozenset
    context: frozenset = frozenset()  # stems of the sentence before it and of the release title
    bigrams: frozenset = frozenset()  # neighbouring content stems, for phrases the question repeats


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
        mats = []
        for rid, ann in data.annotations.items():
            starts = ann.tok_start
            title = self._stems(data.releases[rid].title)
            t = 0
            for s, e in ann.sentences:
                while t < len(starts) and starts[t] < s:
                    t += 1
                t0 = t
                while t < len(starts) and starts[t] < e:
                    t += 1
                text = data.releases[rid].text[s:e]
                seq = self._stem_seq(text)
                stems = frozenset(seq)
                prev = self.sentences[-1].stems if self.sentences and self.sentences[-1].release_id == rid else title
                self.sentences.append(SentenceRef(len(self.sentences), rid, s, e, t0, t, stems, (prev | title) - stems,
                                                  frozenset(zip(seq, seq[1:]))))
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

    def _stem_seq(self, text: str) -> list[str]:
        return self.stemmer.stemWords([w for w in words(text) if w not in STOPWORDS])

    def _stems(self, text: str) -> frozenset:
        return frozenset(self._stem_seq(text))

    def stems(self, toks) -> list[str]:
        return self.stemmer.stemWords(list(toks))

    def idf_of(self, stem: str) -> float:
        return self.idf.get(stem, self.max_idf)

    def chunk_scores(self, qvec: np.ndarray, q: Question, k: int = 20) -> tuple[dict[int, float], dict[int, float]]:
        """Fused (RRF) chunk scores from FAISS and BM25, scaled so the best is 1, and the dense cosines."""
        n = self.data.vectors.ntotal
        fused: dict[int, float] = {}
        dense_sims: dict[int, float] = {}
        if n:
            sims, ids = self.data.vectors.search(qvec, min(k, n))
            for rank, (sim, cid) in enumerate(zip(sims[0], ids[0])):
                if cid >= 0:
                    fused[int(cid)] = fused.get(int(cid), 0.0) + 1.0 / (RRF_K + rank)
                    dense_sims[int(cid)] = float(sim)
        stems = [s for s in self.stems(q.content + q.extra)]
        if stems and len(self.bm25_ids):
            scores = self.data.bm25.get_scores(stems)
            top = np.argsort(-scores)[:k]
            for rank, i in enumerate(top):
                if scores[i] <= 0:
                    break
                cid = int(self.bm25_ids[i])
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
        best = max(fused.values(), default=1.0)
        return {cid: v / best for cid, v in fused.items()}, dense_sims

    def candidates(self, qvec: np.ndarray, q: Question, n_chunks: int = 8, n_sent: int = 8,
                   boost_releases: dict[str, float] | None = None) -> tuple[list[Candidate], dict[int, float]]:
        """Candidate evidence sentences, best first, and the fused chunk scores."""
        chunk, dense = self.chunk_scores(qvec, q)
        top_chunks = sorted(chunk, key=chunk.get, reverse=True)[:n_chunks]
        rows = {r for cid in top_chunks for r in self.chunk_rows.get(cid, ())}
        if len(self.matrix):
            sims = self.matrix @ qvec[0]
            rows.update(int(i) for i in np.argpartition(-sims, min(n_sent, len(sims) - 1))[:n_sent])
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
            out.append(cand)
        out.sort(key=lambda c: c.score, reverse=True)
        return out, chunk
