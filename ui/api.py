"""What the chat and the `/ask` endpoint call, kept free of gradio so it loads fast:
`ask_answer(assistant, question, history, since, until, source)` -> a JSON-ready dict, never an
exception for bad input.
"""
from __future__ import annotations

from typing import Any, Sequence

from . import render

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


def ask_answer(assistant: Any, question: Any, history: Any = None, since: Any = None, until: Any = None,
               source: Any = None) -> dict:
    """What the chat and `/ask` both call: the answer to `question` as a dict (see
    answer_to_dict), from releases dated `since` to `until` (ISO days, inclusive; empty for
    no limit) and from `source` (a source's name or a list of names; empty for every source);
    a dict with a `message` and answered False when the question is empty or too long, the
    history malformed, the dates bad, the source unknown or the index unusable. Never raises
    for bad input."""
    import qa
    from index.errors import IndexStoreError

    question = "" if question is None else str(question)
    pairs = _history_pairs(history)
    if isinstance(pairs, str):
        return message_dict(question, pairs)
    try:
        answer = assistant.ask(question, history=pairs or None, since=since or None, until=until or None,
                               source=source or None)
    except qa.InvalidQuestion as exc:
        return message_dict(question, str(exc))
    except IndexStoreError as exc:
        return message_dict(question, f"The index cannot be used right now: {exc}")
    except qa.ReaderError as exc:
        return message_dict(question, str(exc))
    return answer_to_dict(answer)


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


