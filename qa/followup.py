"""Using earlier turns for a follow-up question ("When does he take office?")."""
from __future__ import annotations

import re
from dataclasses import replace

from .question import STOPWORDS, Question, analyse, words

_REFERRING = frozenset("he she him his her hers it its they them their theirs this that these those there "
                       "then such former latter".split())

History = list[tuple[str, str]]


def normalise_history(history) -> History:
    """Accept (question, answer) pairs as tuples, lists or {question, answer} dicts; drop empty ones."""
    out: History = []
    for turn in history or []:
        if isinstance(turn, dict):
            q, a = turn.get("question", ""), turn.get("answer", "") or ""
        else:
            q, a = (list(turn) + ["", ""])[:2]
        q, a = str(q or "").strip(), str(a or "").strip()
        if q:
            out.append((q, a))
    return out


def needs_context(q: Question) -> bool:
    """A question that refers back (pronouns) or is too short to stand on its own."""
    return any(w in _REFERRING for w in q.tokens) or len(q.content) <= 1


#: pronouns that can stand for a person; "it" and "its" after a "who" answer mean something else
#: ("Who is the Programme Manager?" ... "Which countries did its representatives mention?": the programme's)
_PERSONAL = re.compile(r"\b(he|she|they|him|her|them|his|hers|their)\b", re.IGNORECASE)


def with_context(q: Question, history: History, turns: int = 2) -> tuple[Question, str, str]:
    """The question with earlier turns as context, the text to embed and the question the reader reads.

    After a "who" question, a pronoun is taken to mean its answer ("When does he take
    office?" -> "When does Mark Rutte take office?"); otherwise the earlier question's
    words are added as weaker context ("he" in "What did he say?" is who was asked about)
    to retrieval, and the reader reads the question as asked.
    """
    if not history or not needs_context(q):
        return q, q.text, q.text
    last_q, last_a = history[-1]
    if last_a and analyse(last_q).wh == "who" and _PERSONAL.search(q.text):
        possessive = lambda m: f"{last_a}'s" if m.group(1).lower() in ("his", "hers", "their") else last_a  # noqa: E731
        text = _PERSONAL.sub(possessive, q.text, count=1)
        extra = tuple(w for w in words(last_a) if w not in STOPWORDS and w not in q.content)
        # the substituted name is in the embedded text already; in a sentence it says little
        return replace(q, extra=extra, extra_weight=0.1), text, text
    recent = history[-turns:]
    extra = tuple(w for hq, ha in recent for w in words(f"{hq} {ha}") if w not in STOPWORDS and w not in q.content)
    context = " ".join(f"{hq} {ha}" for hq, ha in recent)
    return replace(q, extra=extra), f"{context} {q.text}", q.text


def previous_answers(history: History, turns: int = 2) -> list[str]:
    return [a for _, a in history[-turns:] if a]
