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


#: words that may follow "how" or "which"/"what" inside the wh-phrase ("how many people", "which city")
_QUANTITY = frozenset("many much long old far often big large tall".split())
_LEAD = re.compile(r"^\s*(?:and|so|but|ok|okay|then|also)\b[\s,]*", re.IGNORECASE)
_WH = re.compile(r"\b(who|whom|whose|when|where|why|which|what|how)\b(?:['’](?:s|re))?", re.IGNORECASE)


def wh_phrase(text: str) -> tuple[int, int] | None:
    """(start, end) of a question's wh-phrase: the wh-word, with "many people" after "how", or the word after
    "which"/"what"/"whose" when it is not a verb the question goes on with ("which city", "what time")."""
    m = _WH.search(text)
    if m is None:
        return None
    end, rest = m.end(), text[m.end():]
    word = re.match(r"\s+([\w’'-]+)", rest)
    lead = m[1].lower()
    if word and lead == "how" and word[1].lower() in _QUANTITY:
        end += word.end()
        rest, word = text[end:], re.match(r"\s+([\w’'-]+)", text[end:])
        lead = "which"  # "how many people": the noun belongs to it too
    if word and lead in ("which", "what", "whose") and word[1].lower() not in STOPWORDS:
        end += word.end()
    return m.start(), end


#: "who is he?", "who's she", "what's her job?", "what does he do?": after a person was named, a question about
#: who that person is; asked of the releases as the person's role (the name again would say nothing new)
_IDENTITY = re.compile(r"^\s*(?:and|so|but|ok|okay|then)?[\s,]*(?:"
                       r"who\s*(?:is|was|['’]s)\s+(?:he|she|they|him|her|that|this)"
                       r"|what\s*(?:is|was|are|['’]s|['’]re)\s+(?:his|her|their)\s+(?:job|role|position|title|post|function)"
                       r"|what\s+(?:does|did|do)\s+(?:he|she|they)\s+do)\s*\??\s*$", re.IGNORECASE)
#: how a question about who a named person is gets asked of the releases
ROLE_QUESTION = "What is the position of {name}?"


def asks_identity(text: str) -> bool:
    """"who is he?" and the like: a question only about who the person just named is."""
    return bool(_IDENTITY.match(text))


def elliptic(q: Question) -> bool:
    """A question that is only a wh-phrase ("where?", "and when was that?", "from how many countries?"):
    it asks the earlier question again about something else."""
    span = wh_phrase(q.text)
    if span is None:
        return False
    rest = [w for w in words(q.text[span[1]:]) if w not in _REFERRING and w not in STOPWORDS]
    return not rest and len(words(q.text[:span[0]])) <= 2


def reask(earlier: str, asked: str) -> str | None:
    """The earlier question with its wh-phrase replaced by the elliptic question's ("when did Stoltenberg meet
    Macron?" + "where?" -> "where did Stoltenberg meet Macron?"), None when either has no wh-phrase."""
    old, new = wh_phrase(earlier), wh_phrase(asked)
    if old is None or new is None:
        return None
    head = _LEAD.sub("", asked[:new[1]]).strip()
    tail = re.sub(r"\s*\?*\s*$", "", earlier[old[1]:])
    return f"{head}{tail}?"


def with_context(q: Question, history: History, turns: int = 2) -> tuple[Question, str, str]:
    """The question with earlier turns as context, the text to embed and the question the reader reads.

    - An elliptic question asks the earlier one again with its own wh-phrase ("when did Stoltenberg meet
      Macron?", "where?" -> "where did Stoltenberg meet Macron?").
    - After a "who" question, "who is he?" / "what's her job?" asks for that person's role ("What is the
      position of Mark Rutte?"), and a pronoun for a person is taken to mean its answer ("When does he take
      office?" -> "When does Mark Rutte take office?"); after a "where" ("when") answer, "there" ("then")
      is that place (time).
    - Otherwise the earlier turns' words are added as weaker context to retrieval, and the reader reads
      the question as asked.
    """
    if not history or not needs_context(q):
        return q, q.text, q.text
    last_q, last_a = history[-1]
    earlier = analyse(last_q)
    if last_a and earlier.wh == "who" and asks_identity(q.text):
        text = ROLE_QUESTION.format(name=last_a)
        extra = tuple(w for w in words(last_a) if w not in STOPWORDS and w not in q.content)
        return replace(q, extra=extra, extra_weight=0.1), text, text
    if elliptic(q) and (text := reask(last_q, q.text)) is not None:
        extra = tuple(w for w in words(last_a) if w not in STOPWORDS and w not in q.content)
        return replace(q, extra=extra, extra_weight=0.1), text, text
    text = q.text
    if last_a and earlier.wh == "who" and _PERSONAL.search(text):
        possessive = lambda m: f"{last_a}'s" if m.group(1).lower() in ("his", "hers", "their") else last_a  # noqa: E731
        text = _PERSONAL.sub(possessive, text, count=1)
    if last_a and (word := {"where": "there", "when": "then"}.get(earlier.wh)):
        text = re.sub(rf"\b{word}\b", lambda m: last_a, text, count=1, flags=re.IGNORECASE)
    if text != q.text:
        extra = tuple(w for w in words(last_a) if w not in STOPWORDS and w not in q.content)
        # the substituted answer is in the embedded text already; in a sentence it says little
        return replace(q, extra=extra, extra_weight=0.1), text, text
    recent = history[-turns:]
    extra = tuple(w for hq, ha in recent for w in words(f"{hq} {ha}") if w not in STOPWORDS and w not in q.content)
    context = " ".join(f"{hq} {ha}" for hq, ha in recent)
    return replace(q, extra=extra), f"{context} {q.text}", q.text


def previous_answers(history: History, turns: int = 2) -> list[str]:
    return [a for _, a in history[-turns:] if a]
