"""The assistant: question (+ history) -> retrieve -> read -> Answer.

One Assistant serves one index folder. It checks between questions whether a newer
index generation has been swapped in and moves to it; a question already running keeps
the generation it started with.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from index import config
from index.errors import IndexStoreError
from index.freshness import corpus_changed
from index.generations import current_generation
from index.search import SearchIndex
from index.types import DateRange, Release, SourceFilter, join_names

from .answer import Answer, Source
from .calibration import Calibration
from .followup import normalise_history, previous_answers, with_context
from .language import foreign_language
from .question import analyse, resolve_days, typed_day
from .reader import Reader, check_reader, precision_of
from .retrieve import Retriever
from .windows import evidence_bounds, make_windows, read

MAX_QUESTION_CHARS = 1000
N_SOURCES = 5
#: added to the sentences of a release that holds an earlier answer of the conversation
HISTORY_BOOST = 0.15
#: index generations replaced while this assistant served, whose releases are kept so that an answer given
#: from one can still be shown inside the release text it was read from
EARLIER_GENERATIONS_KEPT = 2


def no_answer_message(question: str) -> str:
    """Why there is no answer: that the assistant reads English, when the question is confidently in another
    language (qa.language), else that the releases do not seem to answer it; the closest passages are shown."""
    language = foreign_language(question)
    if language:
        return (f"This question seems to be in {language}, and the assistant reads English questions only; "
                "ask it in English (the closest passages are shown).")
    return "The releases do not seem to answer this question; the closest passages are shown."


class InvalidQuestion(ValueError):
    """The question cannot be asked as given (empty, too long, a bad or empty date range, an unknown source)."""


@dataclass(frozen=True)
class _Generation:
    path: Path
    data: SearchIndex
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


def _day(value, name: str, known_dates: Iterable[str]) -> str | None:
    """`value` (a date, or a day as typed: "2024-06-26", "26 June", "june 26", "June 26, 2024", "26/06/2024";
    None or blank for none) as an ISO day; a day without a year takes the releases' year (resolve_days), the
    earliest candidate for since and the latest for until, so the range is never narrower than asked."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, date):
        return value.isoformat()[:10]
    text = str(value).strip()
    mention = typed_day(text)
    days = resolve_days([mention], known_dates) if mention else ()
    if not days:
        raise InvalidQuestion(f"The {name} date {text!r} is not a date; write it like 2024-06-26, 26 June 2024 or "
                              f"26/06/2024 (day first).")
    return days[0] if name == "since" else days[-1]


def check_date_range(since=None, until=None, known_dates: Iterable[str] = ()) -> DateRange | None:
    """The range of release dates to search (ISO days, inclusive), None when neither end is given; `known_dates`
    (the releases' dates) give a day typed without a year its year."""
    known_dates = list(known_dates)
    lo, hi = _day(since, "since", known_dates), _day(until, "until", known_dates)
    if lo is None and hi is None:
        return None
    if lo is not None and hi is not None and lo > hi:
        raise InvalidQuestion(f"The date range is backwards: since ({lo}) is after until ({hi}).")
    return DateRange(lo, hi)


def check_range_holds_releases(index: SearchIndex, dates: DateRange | None) -> None:
    """Refuse a range no release is dated in, saying which dates the releases have."""
    if dates is None or index.rows_in(dates).any():
        return
    span = index.dated_span()
    have = f"the releases are dated {span[0]} to {span[1]}" if span else "no release in the index has a date"
    raise InvalidQuestion(f"No release is dated {dates.describe()}; {have}.")


#: at most this many of the index's sources are named when a source is not one of them
MAX_SOURCES_NAMED = 12


def _source_names(source) -> list[str]:
    """`source` (a name, a list of names; None, blank or empty for none) as the names given."""
    if source is None:
        return []
    items = [source] if isinstance(source, str) else source
    if not isinstance(items, (list, tuple, set, frozenset)) or not all(isinstance(n, str) for n in items):
        raise InvalidQuestion("The source must be a source's name or a list of names.")
    return [n for n in items if n.strip()]


def check_sources(index: SearchIndex, source) -> SourceFilter | None:
    """The sources to search (`source`: a name or a list of names, matched case-insensitively), None when
    none is given; a name the index does not have is refused, naming the sources it has."""
    names = _source_names(source)
    if not names:
        return None
    found, unknown = index.source_filter(names)
    if not unknown:
        return found
    have = [name for name, _ in index.sources()]
    if not have:
        known = "no release in the index names its source"
    else:
        shown = have[:MAX_SOURCES_NAMED] + ([f"{len(have) - MAX_SOURCES_NAMED} more"] if len(have) > MAX_SOURCES_NAMED else [])
        known = f"the index's {'source is' if len(have) == 1 else 'sources are'} {join_names(shown)}"
    what = "the source" if len(unknown) == 1 else "any of the sources"
    raise InvalidQuestion(f"No release has {what} {join_names([repr(n) for n in unknown], 'or')}; {known}.")


def check_filters_hold_releases(index: SearchIndex, dates: DateRange | None, sources: SourceFilter | None) -> None:
    """Refuse a source and date range that no release has together, saying when those sources' releases are dated."""
    if dates is None or sources is None or index.allowed_rows(dates, sources).any():
        return
    span = index.dated_span(index.rows_from(sources))
    their = "its" if len(sources.keys) == 1 else "their"
    have = f"{their} releases are dated {span[0]} to {span[1]}" if span else f"none of {their} releases has a date"
    raise InvalidQuestion(f"No release {sources.describe()} is dated {dates.describe()}; {have}.")


class Assistant:
    """Answers questions from one index folder."""

    def __init__(self, index_dir: str | os.PathLike | None = None, threshold: float | None = None,
                 reader: Reader | str | os.PathLike | None = None, calibration: Calibration | None = None):
        """`reader`: a loaded Reader or its folder (default: the shipped one, checked now, loaded at the first
        question); `calibration` and `threshold` override the reader's own."""
        self.index_dir = config.index_dir(index_dir)
        self._reader = reader if isinstance(reader, Reader) else None
        self._reader_dir = None if self._reader else reader
        meta = self._reader.meta if self._reader else check_reader(reader)
        if self._reader is None:
            precision_of(meta)  # a bad $QA_READER_PRECISION is reported now, not at the first question
        self.calibration = calibration or Calibration.from_dict(meta.get("calibration"))
        self.threshold = self.calibration.threshold if threshold is None else threshold
        self._swap = threading.Lock()  # held only while a new generation is loaded, never across a question
        self._gen = self._load()
        self._earlier: OrderedDict[str, Mapping[str, Release]] = OrderedDict()  # generation -> its releases

    @property
    def reader(self) -> Reader:
        """The reader model, loaded once per process on first use (torch is not imported before)."""
        if self._reader is None:
            from .reader import load_reader

            self._reader = load_reader(str(self._reader_dir) if self._reader_dir else None)
        return self._reader

    # -- index generations -------------------------------------------------
    def _load(self) -> _Generation:
        index = SearchIndex.open(self.index_dir)
        return _Generation(index.path, index, Retriever(index))

    def _current(self) -> _Generation:
        """The newest generation on disk (loaded when `current` has moved), else the one in use."""
        gen = self._gen
        newest = current_generation(self.index_dir)
        if newest is not None and newest.name != gen.path.name:
            with self._swap:
                if self._gen.path.name != newest.name:
                    old = self._gen
                    try:
                        self._gen = self._load()
                    except IndexStoreError:
                        pass  # a broken new index is not served; keep answering from the one we have
                    else:
                        self._earlier[old.path.name] = old.data.releases
                        while len(self._earlier) > EARLIER_GENERATIONS_KEPT:
                            self._earlier.popitem(last=False)
                gen = self._gen
        return gen

    def reload(self) -> None:
        """Load the current generation now (normally done lazily between questions)."""
        self._current()

    # -- public API --------------------------------------------------------
    def ask(self, question: str, history=None, since=None, until=None, source=None) -> Answer:
        """Answer `question`; `history` is a list of earlier (question, answer) pairs; `since` /
        `until` (days, inclusive: "2024-06-26", "26 June", "26/06/2024") keep the search to releases dated in that range; `source` (a
        source's name or a list of names, any case) to releases from those sources."""
        return self.ask_traced(question, history, since, until, source)[0]

    def ask_traced(self, question: str, history=None, since=None, until=None, source=None) -> tuple[Answer, dict]:
        """`ask`, plus what evaluation and calibration need: every window's reading (features and span
        text) and the chosen span even when abstaining."""
        from index.embedder import encode_query

        text = check_question(question)
        gen = self._current()
        dates = check_date_range(since, until, gen.data.dates)
        check_range_holds_releases(gen.data, dates)
        sources = check_sources(gen.data, source)
        check_filters_hold_releases(gen.data, dates, sources)
        hist = normalise_history(history)
        q, query_text, read_text = with_context(analyse(text), hist)
        qvec = encode_query(query_text)
        boost = self._history_boost(gen.data, hist)
        cands, chunk_scores = gen.retriever.candidates(qvec, q, boost=boost, dates=dates, sources=sources)
        if not cands:
            return Answer(text, "", "", False, 0.0, [], message="The index holds no passages to search."), {}

        readings = read(self.reader, read_text, gen.data, make_windows(gen.retriever, cands, self.calibration.windows, q=q))
        trace = {"readings": [(r.features(), gen.data.releases[r.window.release_id].text[r.start:r.end])
                              for r in readings]}
        cal = self.calibration
        best = max(readings, key=lambda r: cal.rank_score(r.features()), default=None)
        cand = best.window.cand if best else cands[0]
        sources = self._sources(gen, cand, chunk_scores)
        release = gen.data.releases[cand.sent.release_id]
        conf = round(cal.probability(best.features()), 4) if best else 0.0
        ev_s, ev_e = evidence_bounds(gen.retriever, best) if best else (cand.sent.start, cand.sent.end)
        trace["span_text"] = release.text[best.start:best.end] if best else ""
        if best is None or conf < self.threshold:
            return Answer(text, "", release.text[ev_s:ev_e], False, conf, sources, release.release_id,
                          None, None, ev_s, ev_e, label=cal.label(conf), message=no_answer_message(text),
                          generation=gen.path.name), trace
        return Answer(text, release.text[best.start:best.end], release.text[ev_s:ev_e], True, conf, sources,
                      release.release_id, best.start, best.end, ev_s, ev_e, label=cal.label(conf),
                      generation=gen.path.name), trace

    def status(self) -> dict:
        """How many releases and chunks, when built, and whether the corpus changed since (from the files'
        sizes and times, hashing only those that moved: no release file is converted)."""
        gen = self._current()
        m = gen.data.manifest
        corpus = m.get("corpus_dir") or str(config.corpus_dir())
        try:
            stale = corpus_changed(corpus, self.index_dir)
        except Exception:
            stale = True
        return {"releases": int(m["releases"]), "chunks": int(m["chunks"]), "built_at": m.get("built_at", ""),
                "corpus_dir": corpus, "index_dir": str(self.index_dir), "stale": stale, "model": m.get("model", ""),
                "generation": gen.path.name}

    def sources_available(self) -> list[tuple[str, int]]:
        """The index's sources as (name, number of releases), by name: what `ask(source=...)` accepts."""
        return self._current().data.sources()

    def release(self, release_id: str, generation: str | None = None) -> Release:
        """The whole release, for showing it with the answer marked: as the index `generation` held it (an
        answer's `generation`, so that its offsets fit the text even after a rebuild), else as it is now."""
        gen = self._current()
        if generation and generation != gen.path.name:
            releases = self._earlier.get(generation)
            if releases is None:
                raise KeyError("the index has been rebuilt since this answer was given; ask again to see the "
                               "release as it is now.")
        else:
            releases = gen.data.releases
        try:
            return releases[release_id]
        except KeyError:
            raise KeyError(f"No release with id {release_id!r} in the index.") from None

    def releases(self) -> list[tuple[str, str, str | None]]:
        """Every release of the index as (release_id, title, date), newest first (undated last): what a
        reader may open whole."""
        found = sorted(((r.release_id, r.title, r.date) for r in self._current().data.releases.values()),
                       key=lambda r: r[1].casefold())
        return sorted(found, key=lambda r: r[2] or "", reverse=True)

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def _history_boost(data: SearchIndex, hist) -> Callable[[str], float] | None:
        """Releases that hold an earlier answer are where a follow-up most likely continues
        (asked only of the releases retrieval brings up, never of the whole index)."""
        answers = [a.casefold() for a in previous_answers(hist) if len(a) >= 3]
        if not answers:
            return None
        return lambda rid: HISTORY_BOOST if any(a in data.releases[rid].text.casefold() for a in answers) else 0.0

    @staticmethod
    def _sources(gen: _Generation, cand, chunk_scores: dict[int, float]) -> list[Source]:
        """Ranked passages; the first holds the answer's sentence."""
        ranked = sorted(chunk_scores, key=chunk_scores.get, reverse=True)
        first = cand.chunk_id  # the chunk the answer's sentence was found in
        order = [first] + [c for c in ranked if c != first]
        out = []
        for cid in order[:N_SOURCES]:
            c = gen.data.chunks[cid]
            r = gen.data.releases[c.release_id]
            out.append(Source(r.release_id, r.title, r.date, c.text, round(float(np.clip(chunk_scores.get(cid, 0.0), 0, 1)), 4),
                              c.start, c.end, r.path, r.url))
        return out
