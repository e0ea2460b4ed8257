"""The answering stage: retrieve passages from the index and extract a verbatim answer.

    import qa
    r = qa.answer("Who will succeed Jens Stoltenberg as Secretary General?")
    r.text, r.evidence, r.answered, r.score, r.sources[0].title
"""
from __future__ import annotations

import threading

from .answer import Answer, Source
from .assistant import Assistant, InvalidQuestion, check_date_range
from .reader import ReaderError

__all__ = ["Answer", "Assistant", "InvalidQuestion", "ReaderError", "Source", "answer", "check_date_range", "default_assistant"]

_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    """The assistant over the default index ($QA_INDEX_DIR or the project's .index/), made once."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant()
        return _default


def answer(question: str, history=None, since=None, until=None, source=None) -> Answer:
    """Answer a question from the default index; see `Assistant.ask`."""
    return default_assistant().ask(question, history=history, since=since, until=until, source=source)
