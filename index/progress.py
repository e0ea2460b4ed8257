"""What a build's progress looks like in a terminal: a tqdm bar per stage, and one line when it waits.

`build_index(progress=...)` reports (done, total, stage); the CLI (`python -m index build`) and the
app's first build (`python -m ui`) draw those reports with `stage_bar()`.
"""
from __future__ import annotations

import sys
from typing import Callable

#: the stage `build_index` reports while another build holds the index's lock
WAITING_STAGE = "waiting for another build"
WAITING_LINE = "Another build of this index is running; waiting for it to finish (--no-wait fails at once instead)."

Progress = Callable[[int, int, str], None]


def say_waiting(done: int, total: int, stage: str) -> None:
    """A progress callback that only says, once per wait, that another build holds the index."""
    if stage == WAITING_STAGE:
        print(WAITING_LINE, file=sys.stderr, flush=True)


def stage_bar() -> tuple[Progress, Callable[[], None]]:
    """(progress callback, close): a tqdm bar on stderr for each stage in turn; waiting is said in one line."""
    from tqdm import tqdm

    bar = {"stage": None, "tqdm": None}

    def update(done: int, total: int, stage: str) -> None:
        if stage == WAITING_STAGE:
            say_waiting(done, total, stage)
            return
        if stage != bar["stage"]:
            close()
            bar["stage"] = stage
            bar["tqdm"] = tqdm(total=total or None, desc=stage, unit="item", file=sys.stderr, leave=False,
                               disable=None, mininterval=0.5)
        if total and bar["tqdm"].total != total:
            bar["tqdm"].total = total
        bar["tqdm"].n = done
        bar["tqdm"].refresh()

    def close() -> None:
        if bar["tqdm"]:
            bar["tqdm"].close()
            bar["tqdm"] = None

    return update, close
