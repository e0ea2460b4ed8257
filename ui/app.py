"""The Gradio app: a chat over the press releases, the passages behind each answer, the
index status with a rebuild button, an upload of new releases, and the `/ask` API endpoint.

`build_app(assistant)` returns the gr.Blocks; `launch(demo, ...)` starts it with the app's
CSS and theme. The chat and `/ask` share `ask_answer`, which calls `assistant.ask` and holds
no lock, so several users are answered at once (up to ASK_CONCURRENCY at a time, the rest
wait in Gradio's queue). Rebuilds and uploads run as their own queued events, one at a time,
so the chat keeps answering from the current index while a new one is built.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from . import render
from .api import (  # noqa: F401  (re-exported: the ask function lives in ui.api, free of gradio)
    DEFAULT_EXAMPLES,
    MAX_EXAMPLES,
    answer_to_dict,
    ask_answer,
    message_dict,
    pick_examples,
)

log = logging.getLogger(__name__)

#: How many questions are answered at the same time; the rest wait in the queue.
ASK_CONCURRENCY = int(os.environ.get("QA_UI_CONCURRENCY", "4"))

#: How long a rebuild waits for another build of the same index (CLI, --watch) to finish.
BUILD_LOCK_WAIT_S = 600.0

#: Seconds between refreshes of the index status (it notices a changed corpus).
STATUS_REFRESH_S = 30.0

TITLE = "Press release Q&A"

CSS = """
.qa-reply p { margin: 0 0 .4em 0; }
.qa-answer strong { font-size: 1.1em; }
.qa-evidence { margin: .3em 0 .5em 0; padding: .2em .7em; border-left: 3px solid #f59e0b;
  color: inherit; font-style: normal; }
.qa-citation { font-size: .9em; opacity: .85; }
.qa-title { font-style: normal; font-weight: 600; }
.qa-score { font-variant-numeric: tabular-nums; opacity: .8; }
mark { background: #fde68a; color: #111; padding: 0 .1em; border-radius: 2px; }
.qa-no-answer strong { font-weight: 600; }
.qa-closest { margin: .2em 0 0 1.2em; padding: 0; }
.qa-closest li { margin-bottom: .3em; }
.qa-sources ol { margin: 0; padding-left: 1.4em; }
.qa-source { margin-bottom: .8em; }
.qa-source-head { font-size: .92em; margin-bottom: .2em; }
.qa-passage { white-space: pre-wrap; font-size: .92em; line-height: 1.45; max-height: 10.5em;
  overflow-y: auto; padding-right: .3em; }
.qa-passage.qa-has-answer { max-height: none; }
.qa-release-title { margin: .2em 0; }
.qa-release-meta { opacity: .8; font-size: .9em; margin: 0 0 .6em 0; }
.qa-release-text { white-space: pre-wrap; line-height: 1.5; max-height: 32em; overflow-y: auto; }
.qa-evidence-span { text-decoration: underline; text-decoration-color: #f59e0b; text-underline-offset: 3px; }
.qa-passage-span { background: rgba(59, 130, 246, .10); }
.qa-status { font-size: .95em; }
.qa-build-log { white-space: pre-wrap; font-size: .92em; }
.qa-stale { color: #b45309; font-weight: 600; }
.qa-status-error { color: #b91c1c; }
.qa-refused { color: #b91c1c; }
.qa-empty { opacity: .7; }
"""


def _theme() -> gr.themes.Base:
    """The default theme with system fonts (no web-font requests: the app works offline)."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


# --------------------------------------------------------------------------- the app


def _safe_status(assistant: Any) -> tuple[dict | None, str | None]:
    try:
        return assistant.status(), None
    except Exception as exc:  # the status line must never break the page
        log.warning("index status failed: %s", exc)
        return None, str(exc)


class StatusCache:
    """The assistant's status, recomputed at most every `ttl` seconds (it re-reads the corpus
    to tell whether it changed), shared by every open page. No lock is held while computing."""

    def __init__(self, assistant: Any, ttl: float = 10.0):
        self.assistant, self.ttl = assistant, ttl
        self._value: tuple[dict | None, str | None] | None = None
        self._at = 0.0

    def get(self, fresh: bool = False) -> tuple[dict | None, str | None]:
        value = self._value
        if fresh or value is None or time.monotonic() - self._at > self.ttl:
            value = _safe_status(self.assistant)
            self._value, self._at = value, time.monotonic()
        return value

    def markup(self, fresh: bool = False) -> str:
        return render.status_html(*self.get(fresh))


def _release_choices(answer: dict | None) -> list[tuple[str, str]]:
    """Dropdown choices (label, release_id): the cited release first, then each source's release once."""
    if not answer:
        return []
    seen, choices = set(), []
    order = list(answer.get("sources") or [])
    if answer.get("answered"):
        order.sort(key=lambda s: s["release_id"] != answer.get("release_id"))
    for s in order:
        rid = s.get("release_id")
        if rid and rid not in seen:
            seen.add(rid)
            choices.append((render.citation_text(s.get("title"), s.get("date")), rid))
    return choices


def build_app(
    assistant: Any,
    examples: Sequence[str] | None = None,
    corpus_dir: str | os.PathLike | None = None,
    index_dir: str | os.PathLike | None = None,
    title: str = TITLE,
) -> gr.Blocks:
    """The Gradio Blocks for `assistant` (a qa.Assistant).

    `examples` are the questions offered to click (DEFAULT_EXAMPLES when None);
    `corpus_dir` / `index_dir` are what the rebuild button and the upload use (by default
    the folders the assistant's index reports in its status).
    """
    examples = list(DEFAULT_EXAMPLES if examples is None else examples)
    statuses = StatusCache(assistant)
    status0, _ = statuses.get()
    corpus_path = Path(corpus_dir or (status0 or {}).get("corpus_dir") or _cfg().corpus_dir())
    index_path = Path(index_dir or (status0 or {}).get("index_dir") or _cfg().index_dir())

    # ---- handlers -------------------------------------------------------------------------

    def ask(question: str, history: list[list[str]] | None = None) -> dict:
        """Answer a question from the press releases.

        `history` is the conversation so far as [question, answer] pairs, for follow-ups.
        Returns a dict with answer, evidence, answered, score, message and sources
        (each with release_id, title, date, text, score, start, end).
        """
        return ask_answer(assistant, question, history)

    def respond(question: str, turns: list[dict]):
        question = question or ""
        turns = list(turns or [])
        history = [[t["question"], t["answer"]["answer"]] for t in turns if t.get("answer") is not None]
        result = ask(question, history)
        if not result["sources"] and not result["answered"] and result["message"]:
            # nothing was attempted: an empty/overlong question or no index
            if not question.strip():
                gr.Info(result["message"])
                return (gr.skip(),) * 6
            reply, answer = render.message_html(result["message"]), None
        else:
            answer = result
            reply = render.answer_html(result, title=result["title"], date=result["date"])
        turns.append({"question": question, "answer": answer, "reply": reply})
        return _outputs(turns, answer, clear_box=True)

    def _messages(turns: list[dict]) -> list[dict]:
        msgs = []
        for t in turns:
            msgs.append({"role": "user", "content": render.question_html(t["question"])})
            msgs.append({"role": "assistant", "content": t["reply"]})
        return msgs

    def _outputs(turns: list[dict], answer: dict | None, clear_box: bool):
        choices = _release_choices(answer)
        first = choices[0][1] if choices else None
        return (
            "" if clear_box else gr.skip(),
            turns,
            _messages(turns),
            render.sources_html(answer),
            gr.Dropdown(choices=choices, value=first, interactive=bool(choices)),
            _release_markup(first, answer),
        )

    def _release_markup(release_id: str | None, answer: dict | None) -> str:
        if not release_id:
            return render.release_html(None)
        try:
            release = assistant.release(release_id)
        except Exception as exc:  # the index may have been rebuilt without this release
            return render.message_html(f"This release cannot be shown: {exc}")
        passage = None
        if answer:
            src = next((s for s in answer.get("sources") or [] if s.get("release_id") == release_id), None)
            if src and src.get("start") is not None:
                passage = (src["start"], src["end"])
        return render.release_html(release, answer if answer and answer.get("answered") else None, passage)

    def open_release(release_id: str | None, turns: list[dict]):
        last = next((t["answer"] for t in reversed(turns or []) if t.get("answer")), None)
        return _release_markup(release_id, last)

    def pick_example(sample: list | None, turns: list[dict]):
        if not sample:
            return (gr.skip(),) * 6
        return respond(str(sample[0]), turns)

    def clear():
        return _outputs([], None, clear_box=True)

    def refresh_status():
        return statuses.markup()

    def rebuild(progress=gr.Progress()):
        return _run_build(progress)

    def _run_build(progress) -> tuple[str, str]:
        """Bring the index in line with the corpus; the chat answers from the current index
        meanwhile and moves to the new one by itself. Build events are queued one at a time
        (concurrency_id "build"); a build run elsewhere (CLI, --watch) is waited for."""
        from index.build import build_index
        from index.errors import BuildLockedError, CorpusError, IndexStoreError

        progress(0, desc="Reading the corpus")

        def on_progress(done: int, total: int, stage: str) -> None:
            progress((done, total) if total else None, desc=stage)

        try:
            report = build_index(corpus_dir=corpus_path, index_dir=index_path, progress=on_progress,
                                 lock_timeout=BUILD_LOCK_WAIT_S)
        except BuildLockedError as exc:
            text = str(exc)
        except (CorpusError, IndexStoreError, OSError) as exc:
            text = f"The rebuild failed: {exc}"
        else:
            text = report.summary() if hasattr(report, "summary") else (
                f"{report.added} added, {report.changed} changed, {report.removed} removed, "
                f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded in {report.seconds:.1f} s.")
        return statuses.markup(fresh=True), f'<div class="qa-build-log">{render.escape(text)}</div>'

    def upload(files: list[str] | None, progress=gr.Progress()):
        from index.errors import CorpusError
        from index.ingest import add_files

        paths = [Path(f) for f in (files or [])]
        if not paths:
            return statuses.markup(fresh=True), render.ingest_html(note="Choose .txt or .md files to add first."), gr.skip()
        try:
            rep = add_files(paths, corpus_dir=corpus_path)
        except (CorpusError, OSError) as exc:
            return statuses.markup(fresh=True), render.ingest_html(note=f"The files could not be added: {exc}"), None
        accepted, refused = list(rep.accepted), list(rep.refused)
        if not accepted:
            return statuses.markup(fresh=True), render.ingest_html(accepted, refused, note="Nothing was added; the index is unchanged."), None
        status, log_html = _run_build(progress)
        return status, render.ingest_html(accepted, refused) + log_html, None

    # ---- layout ---------------------------------------------------------------------------

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        turns = gr.State([])
        with gr.Row(equal_height=False):
            gr.Markdown(f"## {render.escape(title)}\nAsk about the press releases; every answer is a quote from one of them.")
            # filled in when the page loads (demo.load below), so it is never a stale build-time value
            status_box = gr.HTML('<div class="qa-status">Checking the index…</div>',
                                 elem_id="index-status", js_on_load=None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Conversation", elem_id="chat", height=520,
                    render_markdown=False, sanitize_html=True, latex_delimiters=[],
                    feedback_options=None, buttons=[],
                    placeholder="Ask a question, or click an example below.",
                )
                with gr.Row():
                    box = gr.Textbox(
                        show_label=False, placeholder="Ask a question about the press releases…",
                        elem_id="question", scale=6, lines=1, max_lines=4, autofocus=True, submit_btn=False,
                    )
                    ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                example_set = gr.Dataset(
                    components=[gr.Textbox(visible=False)], samples=[[q] for q in examples],
                    label="Example questions", elem_id="examples", layout="table",
                ) if examples else None
                clear_btn = gr.Button("Clear conversation", variant="secondary", elem_id="clear")
            with gr.Column(scale=2):
                with gr.Tabs():
                    with gr.Tab("Sources", elem_id="sources-tab"):
                        sources_box = gr.HTML(render.sources_html(None), elem_id="sources", js_on_load=None)
                        release_pick = gr.Dropdown(label="Open a release", choices=[], value=None,
                                                   interactive=False, elem_id="release-pick")
                        release_box = gr.HTML(render.release_html(None), elem_id="release", js_on_load=None)
                    with gr.Tab("Index", elem_id="index-tab"):
                        gr.HTML(f'<p class="qa-folders">Corpus folder: <code>{render.escape(corpus_path)}</code><br>'
                                f"Index folder: <code>{render.escape(index_path)}</code></p>", js_on_load=None)
                        rebuild_btn = gr.Button("Rebuild index from corpus", elem_id="rebuild")
                        build_log = gr.HTML("", elem_id="build-log", js_on_load=None)
                        uploads = gr.File(label="Add releases (.txt or .md)", file_count="multiple",
                                          type="filepath", elem_id="upload")
                        upload_btn = gr.Button("Add files and rebuild", elem_id="upload-btn")
                        upload_report = gr.HTML("", elem_id="upload-report", js_on_load=None)

        chat_outputs = [box, turns, chatbot, sources_box, release_pick, release_box]
        common = dict(concurrency_id="ask", concurrency_limit=ASK_CONCURRENCY, api_visibility="private")
        box.submit(respond, [box, turns], chat_outputs, **common)
        ask_btn.click(respond, [box, turns], chat_outputs, **common)
        if example_set is not None:
            example_set.click(pick_example, [example_set, turns], chat_outputs, **common)
        clear_btn.click(clear, None, chat_outputs, queue=False, api_visibility="private")
        chatbot.clear(clear, None, chat_outputs, queue=False, api_visibility="private")
        release_pick.input(open_release, [release_pick, turns], release_box, api_visibility="private",
                           concurrency_limit=None)
        build_common = dict(concurrency_id="build", concurrency_limit=1, api_visibility="private")
        rebuild_btn.click(rebuild, None, [status_box, build_log], **build_common)
        upload_btn.click(upload, [uploads], [status_box, upload_report, uploads], **build_common)
        timer = gr.Timer(STATUS_REFRESH_S)
        timer.tick(refresh_status, None, status_box, show_progress="hidden", api_visibility="private",
                   concurrency_id="status", concurrency_limit=None)
        demo.load(lambda: statuses.markup(fresh=True), None, status_box, show_progress="hidden", api_visibility="private",
                  concurrency_id="status", concurrency_limit=None)
        gr.api(ask, api_name="ask", concurrency_id="ask", concurrency_limit=ASK_CONCURRENCY)

    demo.queue(default_concurrency_limit=1)
    return demo


def _cfg():
    import index.config as cfg

    return cfg


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, *,
           block: bool = False, quiet: bool = True, **kwargs) -> str:
    """Start `demo` with the app's theme and CSS; returns the local URL.

    With block=False the server runs in a background thread (call demo.close() to stop it);
    with block=True this call returns only when the server stops.
    """
    import index.config as cfg

    _, url, _ = demo.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet,
        theme=_theme(), css=CSS, footer_links=["api", "gradio"],
        max_file_size=4 * cfg.MAX_UPLOAD_BYTES, **kwargs,
    )
    if block:
        demo.block_thread()
    return url


def local_url(host: str, port: int) -> str:
    """The URL to print for a server bound to host:port (a wildcard host is shown as localhost)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"

