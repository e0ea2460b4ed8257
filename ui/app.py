"""The Gradio app: a chat over the press releases, the passages behind each answer, the
index status with a rebuild button, an upload of new releases, and the `/ask` API endpoint.

`build_app(assistant)` returns the gr.Blocks; `launch(demo, ...)` starts it with the app's
CSS and theme. The chat and `/ask` share `ask_answer`, which calls `assistant.ask` and holds
no lock, so several users are answered at once (up to ASK_CONCURRENCY at a time, up to
ASK_QUEUE_SIZE more wait; past that a question is told at once that the app is busy).
Rebuilds and uploads run as their own queued events, one at a time, so the chat keeps
answering from the current index while a new one is built. Who may rebuild and upload is
decided on the server by a ui.access.AccessPolicy (everyone on localhost by default).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from . import render
from .access import WRONG_PASSWORD_DELAY_S, AccessPolicy
from .gate import Gate
from .api import (  # noqa: F401  (re-exported: the ask function lives in ui.api, free of gradio)
    DEFAULT_EXAMPLES,
    MAX_EXAMPLES,
    Asker,
    Busy,
    Refusal,
    answer_to_dict,
    ask_answer,
    message_dict,
    pick_examples,
)

log = logging.getLogger(__name__)

#: How many questions are answered at the same time; the rest wait in the queue.
ASK_CONCURRENCY = int(os.environ.get("QA_UI_CONCURRENCY", "4"))

#: How many more questions may wait for an answering slot; one more is told "busy, try again
#: in a moment" at once (BUSY_MESSAGE), and so is one that waited ASK_WAIT_S. A waiting question
#: holds one of Gradio's worker threads (40): keep ASK_CONCURRENCY + ASK_QUEUE_SIZE well below that.
ASK_QUEUE_SIZE = int(os.environ.get("QA_UI_QUEUE_SIZE", "16"))
ASK_WAIT_S = 60.0

#: Events of any kind waiting in Gradio's queue (rebuilds, uploads, sign-ins); past it the
#: page says the app is busy and gradio_client raises QueueError. Questions never wait there
#: (they wait in the Gate above), so this is only a backstop.
QUEUE_MAX_SIZE = int(os.environ.get("QA_UI_MAX_QUEUE", "64"))

#: At most this many files in one upload (each at most index.config.MAX_UPLOAD_BYTES).
MAX_UPLOAD_FILES = 20

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
.qa-admin-refused { color: #b91c1c; }
.qa-admin-note { font-size: .95em; opacity: .85; }
.qa-empty { opacity: .7; }
.qa-date-note { font-size: .85em; opacity: .8; margin: .2em 0 0 0; }
.qa-confidence { font-weight: 600; cursor: help; border-bottom: 1px dotted currentColor; }
.qa-confident { color: #15803d; }
.qa-likely { color: #b45309; }
.qa-unsure { color: #6b7280; }
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
    policy: AccessPolicy | None = None,
    ask_concurrency: int | None = None,
    ask_queue_size: int | None = None,
) -> gr.Blocks:
    """The Gradio Blocks for `assistant` (a qa.Assistant).

    `examples` are the questions offered to click (DEFAULT_EXAMPLES when None);
    `corpus_dir` / `index_dir` are what the rebuild button and the upload use (by default
    the folders the assistant's index reports in its status). `policy` says who may rebuild
    and upload (default: everyone, as on localhost with no admin password); the handlers
    check it on the server, and the page shows those controls and the folders only to admins.
    `ask_concurrency` / `ask_queue_size` bound the questions (ASK_CONCURRENCY, ASK_QUEUE_SIZE).
    """
    examples = list(DEFAULT_EXAMPLES if examples is None else examples)
    policy = policy or AccessPolicy()
    asker = Asker(assistant, Gate(ASK_CONCURRENCY if ask_concurrency is None else ask_concurrency,
                                  ASK_QUEUE_SIZE if ask_queue_size is None else ask_queue_size, wait_s=ASK_WAIT_S))
    statuses = StatusCache(assistant)
    status0, _ = statuses.get()
    corpus_path = Path(corpus_dir or (status0 or {}).get("corpus_dir") or _cfg().corpus_dir())
    index_path = Path(index_dir or (status0 or {}).get("index_dir") or _cfg().index_dir())

    # ---- handlers -------------------------------------------------------------------------

    def ask(question: str, history: list[list[str]] | None = None,
            since: str | None = None, until: str | None = None, source: list[str] | str | None = None) -> dict:
        """Answer a question from the press releases.

        `history` is the conversation so far as [question, answer] pairs, for follow-ups.
        `since` / `until` (YYYY-MM-DD, inclusive; optional) keep to releases dated in that range.
        `source` (a source's name or a list of names, any case; optional) keeps to releases from them.
        Returns a dict with answer, evidence, answered, score, label (confident, likely or
        unsure), message and sources (each with release_id, title, date, text, score, start, end).
        When too many questions are waiting, the message says the assistant is busy.
        """
        try:
            return asker(question, history, since, until, source)
        except (Busy, Refusal) as exc:
            return message_dict("" if question is None else str(question), exc.message)

    def respond(question: str, turns: list[dict], since: str | None = None, until: str | None = None,
                source: list[str] | None = None):
        question = question or ""
        turns = list(turns or [])
        history = [[t["question"], t["answer"]["answer"]] for t in turns if t.get("answer") is not None]
        try:
            answer = asker(question, history, since, until, source)
        except Busy as exc:  # the question stays in the box to send again
            gr.Warning(exc.message)
            return (gr.skip(),) * 6
        except Refusal as exc:  # nothing was attempted: one sentence in the chat (a bad range or source...)
            if not question.strip():
                gr.Info(exc.message)
                return (gr.skip(),) * 6
            reply, answer = render.message_html(exc.message), None
        else:
            reply = render.answer_html(answer, title=answer["title"], date=answer["date"])
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

    def pick_example(sample: list | None, turns: list[dict], since: str | None = None, until: str | None = None,
                     source: list[str] | None = None):
        if not sample:
            return (gr.skip(),) * 6
        return respond(str(sample[0]), turns, since, until, source)

    def refresh_sources(picked: list[str] | None, seen: list | None):
        """The source picker's choices brought up to date (after a rebuild), keeping the picks that remain."""
        choices = source_choices(assistant)
        if [list(c) for c in choices] == [list(c) for c in seen or []]:
            return gr.skip(), gr.skip()
        names = {name for _, name in choices}
        return gr.Dropdown(choices=choices, value=[p for p in picked or [] if p in names], multiselect=True), choices

    def clear():
        return _outputs([], None, clear_box=True)

    def refresh_status():
        return statuses.markup()

    def rebuild(request: gr.Request, progress=gr.Progress()):
        """Bring the index in line with the corpus folder (admins only)."""
        if not policy.is_admin(request):
            return statuses.markup(), _refused_html(policy.refusal())
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
            text = report.summary()
        return statuses.markup(fresh=True), f'<div class="qa-build-log">{render.escape(text)}</div>'

    def upload(files: list[str] | None, request: gr.Request, progress=gr.Progress()):
        """Add release files to the corpus and rebuild the index (admins only)."""
        from index.errors import CorpusError
        from index.ingest import add_files

        if not policy.is_admin(request):  # checked before anything is read or written
            return statuses.markup(), _refused_html(policy.refusal()), None
        paths = [Path(f) for f in (files or [])]
        if not paths:
            return statuses.markup(fresh=True), render.ingest_html(note="Choose release files to add first."), gr.skip()
        if len(paths) > MAX_UPLOAD_FILES:
            return statuses.markup(), render.ingest_html(
                note=f"{len(paths)} files were chosen, more than the {MAX_UPLOAD_FILES} one upload can add; "
                     "nothing was added, so add them in smaller groups."), None
        try:
            rep = add_files(paths, corpus_dir=corpus_path, folder=_cfg().uploads_dir(corpus_path))
        except (CorpusError, OSError) as exc:
            return statuses.markup(fresh=True), render.ingest_html(note=f"The files could not be added: {exc}"), None
        accepted, refused = list(rep.accepted), list(rep.refused)
        if not accepted:
            return statuses.markup(fresh=True), render.ingest_html(accepted, refused, note="Nothing was added; the index is unchanged."), None
        status, log_html = _run_build(progress)
        return status, render.ingest_html(accepted, refused) + log_html, None

    def _admin_view(admin: bool, message: str = ""):
        """Outputs of sign-in/out: password box, message, sign-in row, admin panel, folders."""
        return (
            "",
            f'<p class="qa-admin-note">{render.escape(message)}</p>' if message else "",
            gr.Column(visible=policy.needs_sign_in and not admin),
            gr.Column(visible=admin),
            _folders_html() if admin else "",
        )

    def sign_in(password: str | None, request: gr.Request):
        """Sign this session in as admin with the admin password (enables upload and rebuild)."""
        if not policy.needs_sign_in:
            return _admin_view(policy.is_admin(request), "" if policy.everyone_admin else policy.refusal())
        if policy.sign_in(request, password or ""):
            return _admin_view(True, "Signed in as admin: you can add releases and rebuild the index.")
        time.sleep(WRONG_PASSWORD_DELAY_S)
        return _admin_view(False, "That is not the admin password; uploads and rebuilds stay off.")

    def sign_out(request: gr.Request):
        policy.sign_out(request)
        return _admin_view(policy.is_admin(request), "Signed out.")

    def forget_session(request: gr.Request):
        policy.sign_out(request)

    def _folders_html() -> str:
        return (f'<p class="qa-folders">Corpus folder: <code>{render.escape(corpus_path)}</code><br>'
                f"Uploads are saved in: <code>{render.escape(_cfg().uploads_dir(corpus_path))}</code> "
                f"(indexed with the corpus; git ignores it)<br>"
                f"Index folder: <code>{render.escape(index_path)}</code></p>")

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
                # off (empty) by default: every release is searched; qa reads and checks the dates and sources.
                # Plain text boxes, so whatever is typed is sent and read or refused in the chat (gr.DateTime
                # kept its last value that looked like YYYY-MM-DD, so "june 20" was ignored or drew a stale refusal)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=240):
                        with gr.Accordion("Release dates", open=False, elem_id="date-range"):
                            with gr.Row():
                                since_box = gr.Textbox(label="From (inclusive)", lines=1, max_lines=1, elem_id="since",
                                                       placeholder="e.g. 20 June")
                                until_box = gr.Textbox(label="To (inclusive)", lines=1, max_lines=1, elem_id="until",
                                                       placeholder="e.g. 26/06/2024")
                            gr.HTML('<p class="qa-date-note">Empty: no limit. A day as 2024-06-20, 20 June or '
                                    "20/06/2024 (day first); without a year, the releases' year.</p>",
                                    elem_id="date-note", js_on_load=None)
                    with gr.Column(scale=2, min_width=200):
                        with gr.Accordion("Sources", open=False, elem_id="source-filter"):
                            choices0 = source_choices(assistant)
                            source_pick = gr.Dropdown(label="From these sources", choices=choices0, value=[],
                                                      multiselect=True, interactive=True, elem_id="source-pick",
                                                      info="empty: every source")
                            sources_seen = gr.State(choices0)
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
                        # Upload, rebuild and the server's folders are for admins only: shown from the
                        # start when everyone is (localhost, no password), after sign-in otherwise; the
                        # folders are not even in the page's config until then. The handlers check too.
                        if not policy.admin_enabled:
                            gr.HTML(f'<p class="qa-admin-note">{render.escape(policy.refusal())}</p>',
                                    elem_id="read-only-note", js_on_load=None)
                        with gr.Column(visible=policy.needs_sign_in, elem_id="admin-signin") as signin_row:
                            admin_pw = gr.Textbox(label="Admin password", type="password", lines=1, max_lines=1,
                                                  elem_id="admin-password",
                                                  info="Admins can add releases and rebuild the index.")
                            signin_btn = gr.Button("Sign in as admin", elem_id="admin-signin-btn")
                        admin_msg = gr.HTML("", elem_id="admin-message", js_on_load=None)
                        with gr.Column(visible=policy.everyone_admin, elem_id="admin-panel") as admin_panel:
                            folders = gr.HTML(_folders_html() if policy.everyone_admin else "",
                                              elem_id="folders", js_on_load=None)
                            rebuild_btn = gr.Button("Rebuild index from corpus", elem_id="rebuild")
                            build_log = gr.HTML("", elem_id="build-log", js_on_load=None)
                            uploads = gr.File(label=_upload_label(), file_count="multiple",
                                              type="filepath", elem_id="upload")
                            upload_btn = gr.Button("Add files and rebuild", elem_id="upload-btn")
                            upload_report = gr.HTML("", elem_id="upload-report", js_on_load=None)
                            signout_btn = gr.Button("Sign out", variant="secondary", size="sm",
                                                    visible=policy.needs_sign_in, elem_id="admin-signout")

        chat_outputs = [box, turns, chatbot, sources_box, release_pick, release_box]
        # questions are bounded by `gate` inside ask() (so past the bound they hear "busy" at once),
        # not by Gradio's queue
        common = dict(concurrency_id="ask", concurrency_limit=None, api_visibility="private")
        filters = [since_box, until_box, source_pick]
        box.submit(respond, [box, turns, *filters], chat_outputs, **common)
        ask_btn.click(respond, [box, turns, *filters], chat_outputs, **common)
        if example_set is not None:
            example_set.click(pick_example, [example_set, turns, *filters], chat_outputs, **common)
        # the status changes when the page loads and after a rebuild (button, upload, --watch): so may the sources
        status_box.change(refresh_sources, [source_pick, sources_seen], [source_pick, sources_seen],
                          show_progress="hidden", api_visibility="private", concurrency_id="status",
                          concurrency_limit=None)
        clear_btn.click(clear, None, chat_outputs, queue=False, api_visibility="private")
        chatbot.clear(clear, None, chat_outputs, queue=False, api_visibility="private")
        release_pick.input(open_release, [release_pick, turns], release_box, api_visibility="private",
                           concurrency_limit=None)
        # callable by gradio_client too (an admin's scripts), and refused there like on the page
        build_common = dict(concurrency_id="build", concurrency_limit=1, api_visibility="undocumented")
        rebuild_btn.click(rebuild, None, [status_box, build_log], api_name="rebuild", **build_common)
        upload_btn.click(upload, [uploads], [status_box, upload_report, uploads], api_name="upload", **build_common)
        admin_outputs = [admin_pw, admin_msg, signin_row, admin_panel, folders]
        admin_common = dict(concurrency_id="admin", concurrency_limit=1, show_progress="hidden")
        signin_btn.click(sign_in, [admin_pw], admin_outputs, api_name="admin_login",
                         api_visibility="undocumented", **admin_common)
        admin_pw.submit(sign_in, [admin_pw], admin_outputs, api_visibility="private", **admin_common)
        signout_btn.click(sign_out, None, admin_outputs, api_name="admin_logout",
                          api_visibility="undocumented", **admin_common)
        if policy.needs_sign_in:
            demo.unload(forget_session)  # a closed or reloaded page is signed out
        timer = gr.Timer(STATUS_REFRESH_S)
        timer.tick(refresh_status, None, status_box, show_progress="hidden", api_visibility="private",
                   concurrency_id="status", concurrency_limit=None)
        demo.load(lambda: statuses.markup(fresh=True), None, status_box, show_progress="hidden", api_visibility="private",
                  concurrency_id="status", concurrency_limit=None)
        gr.api(ask, api_name="ask", concurrency_id="ask", concurrency_limit=None)

    demo.queue(default_concurrency_limit=1, max_size=QUEUE_MAX_SIZE)
    demo.asker = asker  # launch() serves it as POST /api/ask too, behind the same gate
    return demo


def source_choices(assistant: Any) -> list[tuple[str, str]]:
    """The source picker's choices, (label, name): each of the index's sources with its number of releases."""
    listing = getattr(assistant, "sources_available", None)
    if listing is None:  # an assistant that does not filter by source: nothing to pick
        return []
    try:
        found = listing()
    except Exception as exc:  # the index cannot be read right now: the picker is just empty
        log.warning("index sources failed: %s", exc)
        return []
    return [(f"{name} ({n} release{'' if n == 1 else 's'})", name) for name, n in found]


def _refused_html(sentence: str) -> str:
    """An upload or rebuild refused to a caller who is not an admin."""
    return f'<p class="qa-admin-refused">{render.escape(sentence)}</p>'


def _upload_label() -> str:
    cfg = _cfg()
    size = f"{cfg.MAX_UPLOAD_BYTES / (1024 * 1024):.1f}".rstrip("0").rstrip(".")
    return (f"Add releases ({', '.join(cfg.CORPUS_SUFFIXES)}; up to {MAX_UPLOAD_FILES} files of at most {size} MB each; "
            f"saved in the corpus folder's {cfg.UPLOADS_SUBDIR}/, which git ignores)")


def _cfg():
    import index.config as cfg

    return cfg


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, *,
           block: bool = False, quiet: bool = True, **kwargs) -> str:
    """Start `demo` with the app's theme and CSS; returns the local URL.

    With block=False the server runs in a background thread (call demo.close() to stop it);
    with block=True this call returns only when the server stops. The server also answers
    `POST /api/ask` (ui.http_api), behind the same `auth` as the app.
    """
    import index.config as cfg

    from .http_api import add_json_api

    app, url, _ = demo.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet,
        theme=_theme(), css=CSS, footer_links=["api", "gradio"],
        max_file_size=4 * cfg.MAX_UPLOAD_BYTES, **kwargs,
    )
    add_json_api(app, demo.asker, kwargs.get("auth"))
    if block:
        demo.block_thread()
    return url


def local_url(host: str, port: int) -> str:
    """The URL to print for a server bound to host:port (a wildcard host is shown as localhost)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"

