"""Choose the shortest span of an evidence sentence that answers the question.

Candidates are the sentence's named entities, noun phrases, quoted titles and the
syntactic constituents around the words it shares with the question (its subject, its
object, its predicate). Each is scored by whether it is the kind of thing asked for,
how close it sits to the question's words in the sentence, and whether it merely
repeats the question.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from index.annotate import Annotation

from .question import AUX, STOPWORDS, Question

_YEAR = re.compile(r"\d{3,4}s?")
_QUOTED = re.compile(r"[\"“‘']([^\"”’]{3,200})[\"”’]")
_TRIM_LEFT = frozenset(", ; : - – — ( ) and or but".split())
_TRIM_RIGHT = frozenset(", ; : - – — . ( ) and or but".split())
_OBJECT_DEPS = ("dobj", "ccomp", "xcomp", "attr", "oprd", "acomp", "obj", "dative")
_SUBJECT_DEPS = ("nsubj", "nsubjpass", "csubj", "expl")


@dataclass(frozen=True)
class Span:
    start: int  # offsets in the release text
    end: int
    score: float
    kind: str  # entity label, "np", "quote", "subj", "obj", "pred", "pp"
    typed: bool  # the kind of answer the question asks for


class SentenceView:
    """Tokens of one sentence with the question's words marked."""

    def __init__(self, text: str, ann: Annotation, t0: int, t1: int, qstems: set[str], stem):
        self.text, self.ann, self.t0, self.t1 = text, ann, t0, t1
        self.idx = range(t0, t1)
        low = [text[ann.tok_start[i]:ann.tok_end[i]].lower() for i in self.idx]
        st = stem(low)
        lem = stem([ann.lemma[i] for i in self.idx])
        self.match = [(s in qstems or ls in qstems) and w not in STOPWORDS and _wordlike(w)
                      for w, s, ls in zip(low, st, lem)]
        self.lower = low
        self.children: dict[int, list[int]] = {}
        for i in self.idx:
            h = ann.head[i]
            if h != i and t0 <= h < t1:
                self.children.setdefault(h, []).append(i)

    def subtree(self, i: int, exclude: set[int] = frozenset()) -> list[int]:
        out, stack = [], [i]
        while stack:
            j = stack.pop()
            if j in exclude:
                continue
            out.append(j)
            stack.extend(self.children.get(j, ()))
        return sorted(out)

    def tokens_in(self, start: int, end: int) -> list[int]:
        a = self.ann
        return [i for i in self.idx if a.tok_start[i] >= start and a.tok_end[i] <= end]


def _wordlike(w: str) -> bool:
    """A word or a number ("1,000", "61.1%"), not punctuation."""
    return any(ch.isalnum() for ch in w)


def _contiguous(view: SentenceView, toks: list[int]) -> tuple[int, int] | None:
    """Character span of the tokens, trimmed of edge punctuation and conjunctions."""
    if not toks:
        return None
    toks = list(range(toks[0], toks[-1] + 1))
    a = view.ann
    while toks and (view.lower[toks[0] - view.t0] in _TRIM_LEFT):
        toks.pop(0)
    while toks and (view.lower[toks[-1] - view.t0] in _TRIM_RIGHT):
        toks.pop()
    if not toks:
        return None
    return a.tok_start[toks[0]], a.tok_end[toks[-1]]


def _proximity(view: SentenceView, toks: list[int]) -> float:
    """1 for a span right beside a question word, falling with distance."""
    if not toks:
        return 0.0
    lo, hi = toks[0], toks[-1]
    # nearest occurrence of each distinct question word, averaged: close to all of them beats close to one
    nearest: dict[str, int] = {}
    for k, m in enumerate(view.match):
        if m:
            t = view.t0 + k
            d = lo - t if t < lo else (t - hi if t > hi else 0)
            w = view.lower[k]
            nearest[w] = min(nearest.get(w, d), d)
    if not nearest:
        return 0.0
    near = min(nearest.values())
    mean = sum(1.0 / (1.0 + 0.2 * max(d - 1, 0)) for d in nearest.values()) / len(nearest)
    return 0.5 / (1.0 + 0.35 * max(near - 1, 0)) + 0.5 * mean


def _overlap(view: SentenceView, toks: list[int], exempt: frozenset = frozenset()) -> float:
    """Share of the span's content words that the question already contains (`exempt` words aside)."""
    content = [i for i in toks if view.lower[i - view.t0] not in STOPWORDS and _wordlike(view.lower[i - view.t0])
               and view.lower[i - view.t0] not in exempt and view.ann.lemma[i] not in exempt]
    if not content:
        return 1.0
    return sum(view.match[i - view.t0] for i in content) / len(content)


def _strip_matched_edges(view: SentenceView, toks: list[int]) -> list[int]:
    """Drop question words (and stop words) from the span's edges: 'Admiral Bauer' asked about -> the rest."""
    toks = list(toks)
    while toks and (view.match[toks[0] - view.t0] or view.lower[toks[0] - view.t0] in ("the", "a", "an")
                    and len(toks) > 1 and view.match[toks[1] - view.t0]):
        toks.pop(0)
    while toks and view.match[toks[-1] - view.t0]:
        toks.pop()
    return toks


def candidate_spans(q: Question, view: SentenceView, s_start: int, s_end: int) -> list[Span]:
    """All scored answer candidates in one sentence."""
    a, text = view.ann, view.text
    spans: list[Span] = []
    typed = set(q.types)
    rank = {t: i for i, t in enumerate(q.types)}

    def add(toks: list[int], kind: str, is_typed: bool, bonus: float = 0.0, exempt: frozenset = frozenset()) -> None:
        span = _contiguous(view, toks)
        if span is None:
            return
        toks = view.tokens_in(*span)
        if not toks:
            return
        ov = _overlap(view, toks, exempt)
        if ov >= 0.99:
            return
        prox = _proximity(view, toks)
        n = len(toks)
        length_pen = 0.03 * max(n - 5, 0)
        score = (1.2 if is_typed else 0.0) + 0.8 * prox - 1.2 * ov - length_pen + bonus
        spans.append(Span(span[0], span[1], score, kind, is_typed))

    # named entities
    for s, e, label in a.entities:
        if s >= s_start and e <= s_end:
            toks = view.tokens_in(s, e)
            if q.wh == "when" and label == "CARDINAL" and _YEAR.fullmatch(text[s:e]):
                label = "DATE"  # "in 911": a year the tagger took for a plain number
            is_typed = label in typed
            bonus = -0.3 * rank.get(label, 0) if is_typed else (0.3 if not typed else 0.0)
            if q.wh == "when" and label == "DATE" and any(ch.isdigit() for ch in text[s:e]):
                bonus += 0.3  # a calendar date says more than "today" or "this week"
            if toks and q.subject_wh:
                root = next((t for t in toks if not (toks[0] <= a.head[t] <= toks[-1]) or a.head[t] == t), toks[-1])
                if a.dep[root] in _SUBJECT_DEPS:
                    bonus += 0.3  # "Who considers ...?" is answered by the subject
            if q.wh == "how many" and q.focus and toks and toks[-1] + 1 < view.t1:
                nxt = a.lemma[toks[-1] + 1]
                if nxt == q.focus or view.lower[toks[-1] + 1 - view.t0] == q.focus:
                    bonus += 0.6  # "30,000 men" for "how many men"
            add(toks, label, is_typed, bonus)
            # "Secretary General Jens Stoltenberg" asked as "Who ... Stoltenberg" keeps the new part only
            stripped = _strip_matched_edges(view, toks)
            if stripped and stripped != toks:
                add(stripped, label, is_typed, bonus - 0.05)
    # noun phrases, scored as typed when their head is the question's focus noun
    focus_stem = q.focus
    focus_words = frozenset(q.focus_phrase) | {q.focus.rstrip("s")}
    for s, e in a.noun_chunks:
        if s >= s_start and e <= s_end:
            toks = view.tokens_in(s, e)
            if not toks:
                continue
            head_lemma = a.lemma[toks[-1]]
            focus_hit = bool(focus_stem) and (head_lemma == focus_stem or head_lemma == focus_stem.rstrip("s")
                                              or view.lower[toks[-1] - view.t0] == focus_stem)
            ents_inside = any(es >= s and ee <= e and lab in typed for es, ee, lab in a.entities)
            np_bonus = (0.9 if focus_hit else 0.0) + (0.3 if ents_inside else 0.0) + (0.2 if not q.types else -0.3)
            # "what type of Turing machine" is answered by "single-tape Turing machines": the focus words are expected
            add(toks, "np", False, np_bonus, exempt=focus_words if focus_hit else frozenset())
            stripped = _strip_matched_edges(view, toks) if not q.types else None
            if stripped and stripped != toks:
                add(stripped, "np", False, np_bonus - 0.05)
    # quoted titles and names
    sentence = text[s_start:s_end]
    for m in _QUOTED.finditer(sentence):
        toks = view.tokens_in(s_start + m.start(1), s_start + m.end(1))
        fit = q.focus in ("title", "name", "slogan", "motto", "theme", "called", "word", "phrase", "term")
        add(toks, "quote", fit, 0.2 if fit else -0.2)
    # syntax around the question's words: subject / object / predicate of a matched verb
    if not q.types or q.wh in ("what", "which", "other", "how", "why"):
        _syntactic(q, view, add)
    return spans


def _conjuncts(view: SentenceView, head: int) -> list[list[int]]:
    """A coordinated phrase split into its members ("A and the B as C" -> [A], [the B as C])."""
    a = view.ann
    members, stack = [head], [head]
    while stack:
        t = stack.pop()
        for c in view.children.get(t, ()):
            if a.dep[c] == "conj":
                members.append(c)
                stack.append(c)
    if len(members) < 2:
        return []
    others = set(members)
    out = []
    for m in members:
        rest = others - {m}
        sub = [t for t in view.subtree(m, exclude=rest) if a.dep[t] not in ("cc", "punct") or t != m]
        out.append([t for t in sub if not (a.dep[t] == "cc" and a.head[t] in others)])
    return out


_CLAUSES = ("relcl", "acl", "advcl", "appos", "ccomp", "punct")


def _core(view: SentenceView, head: int) -> list[int]:
    """A phrase without its relative clauses and appositions ("a branch of X that focuses on Y" -> "a branch of X")."""
    a = view.ann
    drop = {c for t in view.subtree(head) for c in view.children.get(t, ()) if a.dep[c] in _CLAUSES and c > head}
    toks = view.subtree(head, exclude=drop)
    # keep it contiguous: stop at the first dropped gap after the head
    out = [t for t in toks if t <= head]
    for t in toks:
        if t > head:
            if out and t != out[-1] + 1:
                break
            out.append(t)
    return out


def _matched_share(view: SentenceView, toks: list[int]) -> float:
    content = [t for t in toks if view.lower[t - view.t0] not in STOPWORDS and _wordlike(view.lower[t - view.t0])]
    return sum(view.match[t - view.t0] for t in content) / len(content) if content else 0.0


def _copular(view: SentenceView, add) -> None:
    """'X is Y': when the question names X, the answer is Y, and the other way round."""
    a = view.ann
    for i in view.idx:
        if a.lemma[i] != "be" or a.pos[i] not in ("AUX", "VERB"):
            continue
        kids = view.children.get(i, [])
        subj = next((c for c in kids if a.dep[c] in ("nsubj", "nsubjpass")), None)
        attr = next((c for c in kids if a.dep[c] in ("attr", "acomp")), None)
        if subj is None or attr is None:
            continue
        st, at = view.subtree(subj), view.subtree(attr)
        ms, ma = _matched_share(view, st), _matched_share(view, at)
        if ms > ma:
            add(at, "attr", False, 0.4 + ms - ma)
            add(_core(view, attr), "attr", False, 0.4 + ms - ma)
        elif ma > ms:
            add(st, "subj", False, 0.4 + ma - ms)
            add(_core(view, subj), "subj", False, 0.4 + ma - ms)


def _syntactic(q: Question, view: SentenceView, add) -> None:
    a = view.ann
    _copular(view, add)
    asks_do = q.tokens[-1:] in (("do",), ("doing",), ("happen",), ("happened",)) if q.tokens else False
    for i in view.idx:
        k = i - view.t0
        if not view.match[k]:
            continue
        pos, dep = a.pos[i], a.dep[i]
        kids = view.children.get(i, [])
        if pos in ("VERB", "AUX") or dep == "ROOT":
            for c in kids:
                cd = a.dep[c]
                if q.subject_wh and cd in _SUBJECT_DEPS:
                    add(view.subtree(c), "subj", False, 0.7)
                    for part in _conjuncts(view, c):
                        add(part, "subj", False, 0.6)
                elif not q.subject_wh and cd in _OBJECT_DEPS:
                    add(view.subtree(c), "obj", False, 0.6)
                    add(_core(view, c), "obj", False, 0.6)
                    for part in _conjuncts(view, c):
                        add(part, "obj", False, 0.5)
                elif cd == "prep" and not q.subject_wh:
                    add(view.subtree(c), "pp", False, 0.1)
        if asks_do and dep in _SUBJECT_DEPS:
            # "What did he say French naval ships do?" -> the predicate of 'ships'
            h = a.head[i]
            if view.t0 <= h < view.t1:
                sub = set(view.subtree(i))
                pred = [t for t in view.subtree(h, exclude=sub)
                        if a.dep[t] not in ("punct", "cc") or t > h]
                pred = [t for t in pred if t >= h]
                add(pred, "pred", False, 1.0)
        if q.wh == "why" and pos in ("VERB", "AUX"):
            for c in kids:
                if a.dep[c] in ("advcl", "prep") and view.lower[c - view.t0] in ("because", "to", "for", "since",
                                                                                   "due", "so"):
                    add(view.subtree(c), "why", False, 0.5)


def best_span(q: Question, view: SentenceView, s_start: int, s_end: int) -> Span | None:
    spans = candidate_spans(q, view, s_start, s_end)
    if not spans:
        return None
    return max(spans, key=lambda s: (s.score, -(s.end - s.start)))
