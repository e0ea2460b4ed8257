"""A bounded queue for questions: at most `concurrency` answered at once and `queue_size`
waiting; one more is turned away at once ("busy, try again in a moment") instead of hanging."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

#: What a question past the queue gets, in the chat and from `/ask`.
BUSY_MESSAGE = "The assistant is busy answering other questions; try again in a moment."


class Gate:
    """`with gate.admit() as admitted:` - admitted is True once one of the `concurrency` slots
    is free (after waiting at most `wait_s`), False at once when `queue_size` callers already
    wait, or when the wait ran out."""

    def __init__(self, concurrency: int, queue_size: int, wait_s: float = 60.0):
        self.concurrency = max(1, int(concurrency))
        self.queue_size = max(0, int(queue_size))
        self.wait_s = wait_s
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._lock = threading.Lock()
        self._inside = 0  # running + waiting

    @property
    def inside(self) -> int:
        return self._inside

    def _enter(self) -> bool:
        with self._lock:
            if self._inside >= self.concurrency + self.queue_size:
                return False
            self._inside += 1
            return True

    def _leave(self) -> None:
        with self._lock:
            self._inside -= 1

    @contextmanager
    def admit(self) -> Iterator[bool]:
        if not self._enter():
            yield False
            return
        try:
            got = self._slots.acquire(timeout=self.wait_s)
            try:
                yield got
            finally:
                if got:
                    self._slots.release()
        finally:
            self._leave()
