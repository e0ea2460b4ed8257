"""What the chat, the `/ask` endpoint and `POST /api/ask` call, kept free of gradio so it loads fast:
`answer_or_refuse(assistant, question, history, since, until, source)` -> a JSON-ready dict, or
`Refusal` (one sentence) for bad input; `ask_answer` turns a refusal into a dict with a message;
`Asker` puts either behind the Gate, raising `Busy` past it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from . import render
from .gate import BUSY_MESSAGE, Gate

#: Candidate example questions offered under the chat, asked in this order as one conversation
#: (so a follow-up comes after the question it follows). `python -m ui` shows those the index
#: answers (see pick_examples); build_app shows whatever list it is given.
DEFAULT_EXAMPLES: list[str] = [
    # the NATO news releases of June 2024 (corpus/nato-releases-2024-06.txt)
    "Who will succeed Jens Stoltenberg as Secretary General?",
    "When does he take office?",
    "Which Baltic country's prime minister visited NATO headquarters on 27 June?",
    "Where did the Secretary General meet President Macron on 24 June?",
    "Who welcomed President Zelenskyy to NATO Headquarters?",
    "How many countries were represented at the Clearing House on Defence Education?",
]

#: At most this many examples are shown.
MAX_EXAMPLES = 5


def _history_pairs(history: Any) -> list[tuple[str, str]] | str:
    """History from the API or the chat as (question, answer) pairs, or an error sentence."""
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        return "The history must be a list of [question, answer] pairs."
    pairs = []
    for item in history:
        if isinstance(item, dict):
            item = (item.get("question"), item.get("answer"))
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            return "The history must be a list of [question, answer] pairs."
        q, a = item
        pairs.append(("" if q is None else str(q), "" if a is None else str(a)))
    return pairs


def _source_dict(source: Any) -> dict:
    g = render.get
    return {
        "release_id": g(source, "release_id"),
        "title": g(source, "title"),
        "date": g(source, "date"),
        "text": g(source, "text"),
        "score": float(g(source, "score") or 0.0),
        "start": g(source, "start"),
        "end": g(source, "end"),
    }


def answer_to_dict(answer: Any) -> dict:
    """The `/ask` reply for a qa.Answer: answer, evidence, answered, score and its label
    (confident / likely / unsure), message, the cited release (release_id, title, date,
    offsets) and sources (title, date, text, score...)."""
    g = render.get
    sources = [_source_dict(s) for s in (g(answer, "sources") or [])]
    rid = g(answer, "release_id")
    cited = next((s for s in sources if rid is not None and s["release_id"] == rid), None)
    answered = bool(g(answer, "answered"))
    return {
        "question": g(answer, "question") or "",
        "answer": g(answer, "text") or "",
        "evidence": g(answer, "evidence") or "",
        "answered": answered,
        "score": float(g(answer, "score") or 0.0),
        "label": g(answer, "label") or _label(float(g(answer, "score") or 0.0)),
        "message": g(answer, "message") or "",
        "release_id": rid,
        "title": cited["title"] if cited and answered else None,
        "date": cited["date"] if cited and answered else None,
        "start": g(answer, "start"),
        "end": g(answer, "end"),
        "evidence_start": g(answer, "evidence_start"),
        "evidence_end": g(answer, "evidence_end"),
        "sources": sources,
    }


def _label(score: float) -> str:
    from qa.calibration import label

    return label(score)


def message_dict(question: str, message: str) -> dict:
    """The `/ask` reply when no answer could be attempted (empty question, bad history or dates, no index)."""
    return {
        "question": question, "answer": "", "evidence": "", "answered": False, "score": 0.0,
        "label": _label(0.0), "message": message, "release_id": None, "title": None, "date": None, "start": None,
        "end": None, "evidence_start": None, "evidence_end": None, "sources": [],
    }


class Refusal(Exception):
    """A question that was not attempted, with the one sentence saying why; `status` is the HTTP status
    `POST /api/ask` answers with (400: the caller's input, 503: the index or the reader cannot be used)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


class Busy(Exception):
    """Too many questions are being answered or waiting; the caller should try again in a moment."""

    message = BUSY_MESSAGE


def answer_or_refuse(assistant: Any, question: Any, history: Any = None, since: Any = None, until: Any = None,
                     source: Any = None) -> dict:
    """The answer to `question` as a dict (see answer_to_dict), from releases dated `since` to `until`
    (days, inclusive; empty for no limit) and from `source` (a source's name or a list of names; empty
    for every source). Raises Refusal when the question is empty or too long, the history malformed,
    the dates bad, the source unknown or the index or reader unusable."""
    import qa
    from index.errors import IndexStoreError

    pairs = _history_pairs(history)
    if isinstance(pairs, str):
        raise Refusal(pairs)
    try:
        answer = assistant.ask("" if question is None else str(question), history=pairs or None,
                               since=since or None, until=until or None, source=source or None)
    except qa.InvalidQuestion as exc:
        raise Refusal(str(exc)) from None
    except IndexStoreError as exc:
        raise Refusal(f"The index cannot be used right now: {exc}", 503) from None
    except qa.ReaderError as exc:
        raise Refusal(str(exc), 503) from None
    return answer_to_dict(answer)


def ask_answer(assistant: Any, question: Any, history: Any = None, since: Any = None, until: Any = None,
               source: Any = None) -> dict:
    """answer_or_refuse, with a refusal as a dict whose `message` says why (answered False, no
    sources): what `/ask` returns, never an exception for bad input."""
    try:
        return answer_or_refuse(assistant, question, history, since, until, source)
    except Refusal as exc:
        return message_dict("" if question is None else str(question), exc.message)


@dataclass
class Asker:
    """The assistant behind the gate that bounds the questions answered at once, shared by the chat,
    `/ask` and `POST /api/ask`: calling it is answer_or_refuse, or Busy at once past the gate."""

    assistant: Any
    gate: Gate

    def __call__(self, question: Any, history: Any = None, since: Any = None, until: Any = None,
                 source: Any = None) -> dict:
        with self.gate.admit() as admitted:
            if not admitted:
                raise Busy()
            return answer_or_refuse(self.assistant, question, history, since, until, source)


def pick_examples(assistant: Any, candidates: Sequence[str] = DEFAULT_EXAMPLES,
                  limit: int = MAX_EXAMPLES) -> list[str]:
    """The candidate questions the index answers, asked in order as one conversation (a
    follow-up is tried with the answers before it); all candidates if none is answered.
    Asking them also loads the models, so the first user does not wait for that."""
    picked: list[str] = []
    history: list[list[str]] = []
    for q in candidates:
        r = ask_answer(assistant, q, history)
        if r["answered"]:
            picked.append(q)
            history.append([q, r["answer"]])
        if len(picked) >= limit:
            break
    return picked or list(candidates)[:limit]


