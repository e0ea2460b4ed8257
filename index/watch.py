"""Keep the index in line with the corpus folder: rebuild shortly after release files change.

`watch()` blocks (it is what `python -m index watch` runs); `watch_in_background()` runs it
in a daemon thread for the app. Changes are grouped with watchfiles: a rebuild starts once
the corpus has been quiet for `debounce` seconds (or at the latest after `max_wait`), so a
burst of edits costs one build. A build that fails is reported in one line and watching goes
on; edits made during a build are picked up by the next one.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Callable

from . import config
from .errors import CorpusError, IndexStoreError

Log = Callable[[str], None]


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ReleaseFilter:
    """watchfiles filter: release files (every format of `config.CORPUS_SUFFIXES`) and folders of the corpus,
    not hidden, not the index."""

    def __init__(self, corpus: Path, index: Path | None = None):
        self.corpus = Path(corpus).resolve()
        self.index = Path(index).resolve() if index else None

    def __call__(self, change, path: str) -> bool:
        p = Path(path)
        for candidate in (p, p.resolve()):
            try:
                rel = candidate.relative_to(self.corpus)
                break
            except ValueError:
                continue
        else:
            return False
        if self.index is not None and (candidate == self.index or self.index in candidate.parents):
            return False
        if any(part.startswith(".") for part in rel.parts):
            return False
        suffix = p.suffix.lower()
        # A folder moved or deleted as a whole shows up as one event on the folder itself.
        return suffix in config.CORPUS_SUFFIXES or suffix == ""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, (CorpusError, IndexStoreError)) and text else f"{type(exc).__name__}: {text}"


def watch(corpus_dir: str | Path | None = None, index_dir: str | Path | None = None, debounce: float = 2.0,
          stop_event: threading.Event | None = None, on_build: Callable | None = None,
          on_error: Callable[[BaseException], None] | None = None, initial_build: bool = True,
          max_wait: float | None = None, log: Log | None = _print) -> None:
    """Watch `corpus_dir` and rebuild `index_dir` after release files change, until `stop_event` is set.

    `on_build(report)` is called after each build that succeeded, `on_error(exc)` after one that
    failed. With `initial_build`, the index is first brought up to date with the corpus as it is.
    """
    import watchfiles

    from .build import build_index

    corpus, index = config.corpus_dir(corpus_dir), config.index_dir(index_dir)
    if not corpus.is_dir():
        raise CorpusError(f"The corpus folder {corpus} does not exist; create it before watching it.")
    say = log or (lambda _line: None)

    def rebuild(why: str) -> None:
        try:
            report = build_index(corpus, index)
        except Exception as exc:  # one bad build must not stop the watcher
            say(f"Index build failed ({why}): {_one_line(exc)}")
            if on_error:
                on_error(exc)
            return
        if report.written:
            say(f"Index rebuilt ({why}): {report.added} added, {report.changed} changed, {report.removed} removed, "
                f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded in {report.seconds:.1f} s.")
        else:
            say(f"Index up to date ({why}): {report.releases} releases.")
        for path, reason in report.skipped:
            say(f"Skipped {path}: {reason}")
        if on_build:
            on_build(report)

    step_ms = max(1, int(debounce * 1000))
    max_ms = max(step_ms, int((max_wait if max_wait is not None else max(10.0, 5 * debounce)) * 1000))
    started = False
    # yield_on_timeout: the first (empty) yield means the watcher is armed, so the initial build
    # runs only then and no edit made meanwhile can slip between it and the watching.
    for changes in watchfiles.watch(corpus, watch_filter=ReleaseFilter(corpus, index), debounce=max_ms,
                                    step=step_ms, stop_event=stop_event, raise_interrupt=False,
                                    rust_timeout=500, yield_on_timeout=True):
        if stop_event is not None and stop_event.is_set():
            break
        if not started:
            started = True
            say(f"Watching {corpus} for changes to release files ({', '.join(config.CORPUS_SUFFIXES)}).")
            if initial_build or changes:
                rebuild("start")
            continue
        if not changes:
            continue
        names = sorted({Path(p).name for _, p in changes})
        rebuild(f"{len(changes)} change{'s' if len(changes) != 1 else ''}: {', '.join(names[:3])}"
                f"{', ...' if len(names) > 3 else ''}")


def watch_in_background(corpus_dir: str | Path | None = None, index_dir: str | Path | None = None,
                        debounce: float = 2.0, on_build: Callable | None = None,
                        on_error: Callable[[BaseException], None] | None = None, initial_build: bool = True,
                        log: Log | None = _print) -> tuple[threading.Thread, threading.Event]:
    """Run `watch` in a daemon thread; set the returned event to stop it (it ends within a second)."""
    stop = threading.Event()

    def run() -> None:
        try:
            watch(corpus_dir, index_dir, debounce=debounce, stop_event=stop, on_build=on_build,
                  on_error=on_error, initial_build=initial_build, log=log)
        except Exception as exc:
            if log:
                log(f"The index watcher stopped: {_one_line(exc)}")
            if on_error:
                on_error(exc)

    thread = threading.Thread(target=run, name="index-watch", daemon=True)
    thread.start()
    return thread, stop
