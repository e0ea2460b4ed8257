"""The query API answering uses, over one index generation (after Haystack 2's document stores).

`SearchIndex` holds what a question is searched against: filters over the chunk rows (release dates and
sources, as masks), dense top-k (FAISS), BM25 top-k, idf from the document frequencies stored at build
time, and lookups of releases, chunks and sentences. Fusion and sentence scoring belong to the caller
(qa.retrieve); it never sees SQLite, FAISS or bm25s.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from . import bm25, store
from .dates import day_number, iso_day
from .types import Chunk, DateRange, Release, SourceFilter, fold_source

#: a ranked list of (chunk id, score), best first
Hits = list[tuple[int, float]]


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


class SearchIndex:
    """One index generation, opened for answering. Masks are over the chunk rows (`chunk_ids` order).

    Nothing here grows with the corpus beyond what the index memory-maps: the chunk rows (id, release
    date), the FAISS index and BM25; releases, chunks, sentences and term counts are read when asked.
    """

    def __init__(self, data: store.IndexData):
        import faiss

        faiss.omp_set_num_threads(1)  # searches here are tiny: threads only add start-up cost
        self._data = data
        self.chunk_ids = np.asarray(data.rows["chunk_id"], dtype=np.int64)  # BM25 documents are these rows
        self.row_days = data.rows["day"]
        #: ISO dates of the index's releases (each distinct date once, in order)
        self.dates = [iso_day(d) for d in np.unique(self.row_days) if d >= 0]
        self.n_docs = max(int(data.manifest.get("chunks", 0)), 1)
        self.max_idf = math.log(1 + self.n_docs)
        self.stemmer = bm25.stemmer()
        self._idf = lru_cache(maxsize=65536)(self._compute_idf)
        self._source_masks = lru_cache(maxsize=16)(self._source_mask)

    @classmethod
    def open(cls, index_dir: str | Path | None = None) -> "SearchIndex":
        """The current generation of an index folder (checked; IndexStoreError when it cannot be used)."""
        return cls(store.load(index_dir))

    # -- the generation ------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self._data.path

    @property
    def generation(self) -> str:
        return self._data.generation

    @property
    def manifest(self) -> dict:
        return self._data.manifest

    # -- lookups -------------------------------------------------------------
    @property
    def releases(self) -> Mapping[str, Release]:
        """release_id -> Release, read on demand, iterated in corpus order."""
        return self._data.releases

    @property
    def chunks(self) -> Mapping[int, Chunk]:
        """chunk_id -> Chunk, read on demand."""
        return self._data.chunks

    def sentences(self, release_id: str) -> list[tuple[int, int]]:
        """A release's sentences as (start, end) offsets into its text."""
        return self._data.annotations[release_id].sentences

    # -- dates ---------------------------------------------------------------
    def rows_in(self, dates: DateRange) -> np.ndarray:
        """True where the chunk's release is dated inside `dates` (an undated release is in no range)."""
        lo = day_number(dates.since) if dates.since else 0
        hi = day_number(dates.until) if dates.until else np.iinfo(np.int32).max
        return (self.row_days >= lo) & (self.row_days <= hi) & (self.row_days >= 0)

    def rows_dated_on(self, days: Iterable[str]) -> np.ndarray:
        """True where the chunk's release is dated on one of `days` (ISO)."""
        return np.isin(self.row_days, [day_number(d) for d in days])

    def dated_span(self, mask: np.ndarray | None = None) -> tuple[str, str] | None:
        """The first and last release dates (of the chunk rows in `mask`), or None when none is dated."""
        if mask is None:
            return (self.dates[0], self.dates[-1]) if self.dates else None
        days = self.row_days[mask]
        days = days[days >= 0]
        return (iso_day(days.min()), iso_day(days.max())) if len(days) else None

    # -- sources -------------------------------------------------------------
    @cached_property
    def source_table(self) -> SourceTable:
        """The index's sources (read once per generation, when first needed)."""
        return SourceTable.of(self._data.releases.sources(), self._data.rows["release_pos"])

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
        """True where the chunk's release is from one of `sources` (cached per set of sources: never change
        it in place)."""
        return self._source_masks(sources.keys)

    def _source_mask(self, keys: frozenset[str]) -> np.ndarray:
        t = self.source_table
        mask = np.isin(t.row_codes, np.fromiter((t.codes[k] for k in keys if k in t.codes), np.int32))
        mask.flags.writeable = False  # cached and shared: combine with &, never in place
        return mask

    def allowed_rows(self, dates: DateRange | None = None, sources: SourceFilter | None = None) -> np.ndarray | None:
        """The mask over the chunk rows that both filters admit; None when there is neither."""
        masks = ([] if dates is None else [self.rows_in(dates)]) + ([] if sources is None else [self.rows_from(sources)])
        if not masks:
            return None
        return masks[0] if len(masks) == 1 else masks[0] & masks[1]

    # -- search --------------------------------------------------------------
    def dense(self, qvec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> Hits:
        """The `k` chunks nearest the unit vector `qvec` (cosine), among the rows `allowed` (None: all)."""
        from . import vectors as vector_index

        ids = self.chunk_ids if allowed is None else self.chunk_ids[allowed]
        if not len(ids):
            return []
        sims, found = vector_index.search(self._data.vectors, qvec, min(k, len(ids)),
                                          allowed_ids=None if allowed is None else ids)
        return [(int(cid), float(sim)) for sim, cid in zip(sims[0], found[0]) if cid >= 0]

    def lexical(self, stems: list[str], k: int, allowed: np.ndarray | None = None) -> Hits:
        """The `k` chunks BM25 scores highest for the stemmed words `stems` (ties in row order), among the
        rows `allowed`; chunks scoring 0 left out."""
        if not stems or not len(self.chunk_ids):
            return []
        scores = self._data.bm25.get_scores(stems)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def stem(self, words: Iterable[str]) -> list[str]:
        """Words as BM25 indexed them (Snowball stems)."""
        return self.stemmer.stemWords(list(words))

    def idf(self, stem: str) -> float:
        """Inverse document frequency of a stem over the chunks; a stem no chunk holds gets the largest."""
        return self._idf(stem)

    def _compute_idf(self, stem: str) -> float:
        df = self._data.document_frequency(stem)
        return math.log(1 + self.n_docs / df) if df else self.max_idf
