"""Using earlier turns for a follow-up question ("When does he take office?")."""
from __future__ import annotations

from dataclasses import replace

from .question import STOPWORDS, Question, words

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


def with_context(q: Question, history: History, turns: int = 2) -> tuple[Question, str]:
    """The question with the last turns' words as extra context, and the text to embed."""
    if not history or not needs_context(q):
        return q, q.text
    recent = history[-turns:]
    extra = tuple(w for hq, ha in recent for w in words(f"{hq} {ha}") if w not in STOPWORDS and w not in q.content)
    context = " ".join(f"{hq} {ha}" for hq, ha in recent)
    return replace(q, extra=extra), f"{context} {q.text}"


def previous_answers(history: History, turns: int = 2) -> list[str]:
    return [a for _, a in history[-turns:] if a]
