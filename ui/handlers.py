"""What the page's events do: module-level functions taking the app's `AppContext` first (ui.app binds it),
returning named views (`ChatView`, `AdminView`) whose fields are the components they update.

The conversation is one list of `Turn`s from the page's state to the chat bubbles and to the history the
assistant reads (`history_of`: the `/ask` API's [question, answer] pairs). A question is bounded by the
`Asker`'s gate (`Busy`: a notice, the question stays in the box); one the assistant would refuse for its own
text (empty, over-long) is refused before it is posted; one refused for its filters gets a sentence in the chat.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from . import render
from .access import WRONG_PASSWORD_DELAY_S, AccessPolicy
from .api import Asker, Busy, Refusal, message_dict

log = logging.getLogger(__name__)

#: At most this many files in one upload (each at most index.config.MAX_UPLOAD_BYTES).
MAX_UPLOAD_FILES = 20

#: How long a rebuild waits for another build of the same index (CLI, --watch) to finish.
BUILD_LOCK_WAIT_S = 600.0


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
            value = self._compute()
            self._value, self._at = value, time.monotonic()
        return value

    def _compute(self) -> tuple[dict | None, str | None]:
        try:
            return self.assistant.status(), None
        except Exception as exc:  # the status line must never break the page
            log.warning("index status failed: %s", exc)
            return None, str(exc)

    def markup(self, fresh: bool = False) -> str:
        return render.status_html(*self.get(fresh))


@dataclass
class AppContext:
    """What the handlers share: the assistant behind its gate, who may change the corpus, the index status
    and the folders a rebuild and an upload use."""

    asker: Asker
    policy: AccessPolicy
    statuses: StatusCache
    corpus_dir: Path
    index_dir: Path
    _releases: tuple[str, list[tuple[str, str]]] = field(default=("", []), repr=False)

    @property
    def assistant(self) -> Any:
        return self.asker.assistant

    def release_choices(self) -> list[tuple[str, str]]:
        """'Open a release' choices for every release of the index, listed again only for a new generation."""
        status, _ = self.statuses.get()
        generation = (status or {}).get("generation") or ""
        if not generation or generation != self._releases[0]:
            self._releases = (generation, _list_releases(self.assistant))
        return self._releases[1]


@dataclass
class Turn:
    """One exchange of the conversation: the question, the `/ask` dict (None when it was refused) and the
    reply's markup."""

    question: str
    answer: dict | None
    reply: str


class ChatView(NamedTuple):
    """What the chat's events update, by the name of the component in ui.layout.Layout."""

    box: Any
    turns: Any
    chat: Any
    sources: Any
    release_pick: Any
    release: Any


class AdminView(NamedTuple):
    """What signing in and out update, by the name of the component in ui.layout.Layout."""

    admin_pw: Any
    admin_msg: Any
    signin_row: Any
    admin_panel: Any
    folders: Any


UNCHANGED = ChatView(*(gr.skip(),) * len(ChatView._fields))


# --------------------------------------------------------------------------- asking


def ask(ctx: AppContext, question: str, history: list[list[str]] | None = None,
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
        return ctx.asker(question, history, since, until, source)
    except (Busy, Refusal) as exc:
        return message_dict("" if question is None else str(question), exc.message)


def respond(ctx: AppContext, question: str, turns: list[Turn], since: str | None = None,
            until: str | None = None, source: list[str] | None = None) -> ChatView:
    """The chat's answer to `question`, posted with it; a question the assistant cannot take as typed, or one
    past the gate, gets a notice instead and stays in the box."""
    question, turns = question or "", list(turns or [])
    unfit = _unfit_question(question)
    if unfit:
        gr.Warning(unfit)
        return UNCHANGED
    try:
        answer = ctx.asker(question, history_of(turns), since, until, source)
    except Busy as exc:
        gr.Warning(exc.message)
        return UNCHANGED
    except Refusal as exc:  # nothing was attempted (a bad range or source...): one sentence in the chat
        turn = Turn(question, None, render.message_html(exc.message))
    else:
        turn = Turn(question, answer, render.answer_html(answer, title=answer["title"], date=answer["date"]))
    return chat_view(ctx, [*turns, turn], turn.answer)


def _unfit_question(question: str) -> str | None:
    """Why the assistant would refuse the question's own text (empty, longer than qa allows), else None."""
    import qa
    from qa.assistant import check_question

    try:
        check_question(question)
    except qa.InvalidQuestion as exc:
        return str(exc)
    return None


def history_of(turns: list[Turn]) -> list[list[str]]:
    """The conversation as the assistant reads it: the answered (or abstained) turns as [question, answer]."""
    return [[t.question, t.answer["answer"]] for t in turns if t.answer is not None]


def messages_of(turns: list[Turn]) -> list[dict]:
    """The conversation as chat bubbles."""
    msgs = []
    for t in turns:
        msgs.append({"role": "user", "content": render.question_html(t.question)})
        msgs.append({"role": "assistant", "content": t.reply})
    return msgs


def chat_view(ctx: AppContext, turns: list[Turn], answer: dict | None) -> ChatView:
    """The box emptied, the conversation shown, and `answer`'s passages and release opened."""
    first = cited_release(answer)
    return ChatView(
        box="", turns=turns, chat=messages_of(turns), sources=render.sources_html(answer),
        release_pick=gr.Dropdown(choices=ctx.release_choices(), value=first),
        release=release_markup(ctx, first, answer),
    )


def clear(ctx: AppContext) -> ChatView:
    return chat_view(ctx, [], None)


def cited_release(answer: dict | None) -> str | None:
    """The release an answer came from, else that of its closest passage; None without passages."""
    if not answer:
        return None
    if answer.get("answered") and answer.get("release_id"):
        return answer["release_id"]
    return next((s["release_id"] for s in answer.get("sources") or [] if s.get("release_id")), None)


def release_markup(ctx: AppContext, release_id: str | None, answer: dict | None) -> str:
    """The whole release, with `answer` marked in it and the passage it was found in shaded."""
    if not release_id:
        return render.release_html(None)
    src = next((s for s in (answer or {}).get("sources") or [] if s.get("release_id") == release_id), None)
    # a release the answer cites is shown as the index generation that answered held it, so its marks fit
    cited = answer is not None and (src is not None or answer.get("release_id") == release_id)
    try:
        release = ctx.assistant.release(release_id, generation=answer.get("generation") if cited else None)
    except Exception as exc:  # the index may have been rebuilt without this release
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return render.message_html(f"This release cannot be shown: {reason}")
    passage = (src["start"], src["end"]) if src and src.get("start") is not None else None
    return render.release_html(release, answer if answer and answer.get("answered") else None, passage)


def open_release(ctx: AppContext, release_id: str | None, turns: list[Turn]) -> str:
    last = next((t.answer for t in reversed(turns or []) if t.answer), None)
    return release_markup(ctx, release_id, last)


# --------------------------------------------------------------------------- what the index holds


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


def _list_releases(assistant: Any) -> list[tuple[str, str]]:
    """(label, release_id) of every release of the index, newest first; none when it cannot be read."""
    listing = getattr(assistant, "releases", None)
    if listing is None:
        return []
    try:
        found = listing()
    except Exception as exc:  # the index cannot be read right now: nothing to open
        log.warning("index releases failed: %s", exc)
        return []
    return [(render.citation_text(title, date), rid) for rid, title, date in found]


def refresh_sources(ctx: AppContext, picked: list[str] | None, seen: list | None):
    """The source picker's choices brought up to date (after a rebuild), keeping the picks that remain."""
    choices = source_choices(ctx.assistant)
    if [list(c) for c in choices] == [list(c) for c in seen or []]:
        return gr.skip(), gr.skip()
    names = {name for _, name in choices}
    return gr.Dropdown(choices=choices, value=[p for p in picked or [] if p in names], multiselect=True), choices


def refresh_releases(ctx: AppContext, picked: str | None) -> gr.Dropdown:
    """'Open a release' listing every release of the index (after a rebuild too), keeping the one open."""
    choices = ctx.release_choices()
    return gr.Dropdown(choices=choices, value=picked if picked in {rid for _, rid in choices} else None)


def status_markup(ctx: AppContext) -> str:
    return ctx.statuses.markup()


def fresh_status_markup(ctx: AppContext) -> str:
    return ctx.statuses.markup(fresh=True)


# --------------------------------------------------------------------------- changing the corpus


def rebuild(ctx: AppContext, request: gr.Request, progress=gr.Progress()):
    """Bring the index in line with the corpus folder (admins only)."""
    if not ctx.policy.is_admin(request):
        return ctx.statuses.markup(), refused_html(ctx.policy.refusal())
    return _run_build(ctx, progress)


def _run_build(ctx: AppContext, progress) -> tuple[str, str]:
    """Bring the index in line with the corpus; the chat answers from the current index meanwhile and moves to
    the new one by itself. Build events are queued one at a time (concurrency_id "build"); a build run
    elsewhere (CLI, --watch) is waited for."""
    from index.build import build_index
    from index.errors import BuildLockedError, CorpusError, IndexStoreError

    progress(0, desc="Reading the corpus")

    def on_progress(done: int, total: int, stage: str) -> None:
        progress((done, total) if total else None, desc=stage)

    try:
        report = build_index(corpus_dir=ctx.corpus_dir, index_dir=ctx.index_dir, progress=on_progress,
                             lock_timeout=BUILD_LOCK_WAIT_S)
    except BuildLockedError as exc:
        text = str(exc)
    except (CorpusError, IndexStoreError, OSError) as exc:
        text = f"The rebuild failed: {exc}"
    else:
        text = report.summary()
    return ctx.statuses.markup(fresh=True), f'<div class="qa-build-log">{render.escape(text)}</div>'


def upload(ctx: AppContext, files: list[str] | None, request: gr.Request, progress=gr.Progress()):
    """Add release files to the corpus and rebuild the index (admins only)."""
    from index.errors import CorpusError
    from index.ingest import add_files

    if not ctx.policy.is_admin(request):  # checked before anything is read or written
        return ctx.statuses.markup(), refused_html(ctx.policy.refusal()), None
    paths = [Path(f) for f in (files or [])]
    if not paths:
        return ctx.statuses.markup(fresh=True), render.ingest_html(note="Choose release files to add first."), gr.skip()
    if len(paths) > MAX_UPLOAD_FILES:
        return ctx.statuses.markup(), render.ingest_html(
            note=f"{len(paths)} files were chosen, more than the {MAX_UPLOAD_FILES} one upload can add; "
                 "nothing was added, so add them in smaller groups."), None
    try:
        rep = add_files(paths, corpus_dir=ctx.corpus_dir, folder=_cfg().uploads_dir(ctx.corpus_dir))
    except (CorpusError, OSError) as exc:
        return ctx.statuses.markup(fresh=True), render.ingest_html(note=f"The files could not be added: {exc}"), None
    accepted, refused = list(rep.accepted), list(rep.refused)
    if not accepted:
        note = "Nothing was added; the index is unchanged."
        return ctx.statuses.markup(fresh=True), render.ingest_html(accepted, refused, note=note), None
    status, log_html = _run_build(ctx, progress)
    return status, render.ingest_html(accepted, refused) + log_html, None


def refused_html(sentence: str) -> str:
    """An upload or rebuild refused to a caller who is not an admin."""
    return f'<p class="qa-admin-refused">{render.escape(sentence)}</p>'


def upload_label() -> str:
    """The upload box's label: the formats, the limits and where the files go."""
    cfg = _cfg()
    size = f"{cfg.MAX_UPLOAD_BYTES / (1024 * 1024):.1f}".rstrip("0").rstrip(".")
    return (f"Add releases ({', '.join(cfg.CORPUS_SUFFIXES)}; up to {MAX_UPLOAD_FILES} files of at most {size} MB each; "
            f"saved in the corpus folder's {cfg.UPLOADS_SUBDIR}/, which git ignores)")


def folders_html(ctx: AppContext) -> str:
    """The server's folders, shown to admins only."""
    return (f'<p class="qa-folders">Corpus folder: <code>{render.escape(ctx.corpus_dir)}</code><br>'
            f"Uploads are saved in: <code>{render.escape(_cfg().uploads_dir(ctx.corpus_dir))}</code> "
            f"(indexed with the corpus; git ignores it)<br>"
            f"Index folder: <code>{render.escape(ctx.index_dir)}</code></p>")


def _cfg():
    import index.config as cfg

    return cfg


# --------------------------------------------------------------------------- admins


def admin_view(ctx: AppContext, admin: bool, message: str = "") -> AdminView:
    """The Index tab for an admin (upload, rebuild, folders) or not (the sign-in row when there is one)."""
    return AdminView(
        admin_pw="",
        admin_msg=f'<p class="qa-admin-note">{render.escape(message)}</p>' if message else "",
        signin_row=gr.Column(visible=ctx.policy.needs_sign_in and not admin),
        admin_panel=gr.Column(visible=admin),
        folders=folders_html(ctx) if admin else "",
    )


def sign_in(ctx: AppContext, password: str | None, request: gr.Request) -> AdminView:
    """Sign this session in as admin with the admin password (enables upload and rebuild)."""
    policy = ctx.policy
    if not policy.needs_sign_in:
        return admin_view(ctx, policy.is_admin(request), "" if policy.everyone_admin else policy.refusal())
    if policy.sign_in(request, password or ""):
        return admin_view(ctx, True, "Signed in as admin: you can add releases and rebuild the index.")
    time.sleep(WRONG_PASSWORD_DELAY_S)
    return admin_view(ctx, False, "That is not the admin password; uploads and rebuilds stay off.")


def sign_out(ctx: AppContext, request: gr.Request) -> AdminView:
    ctx.policy.sign_out(request)
    return admin_view(ctx, ctx.policy.is_admin(request), "Signed out.")


def forget_session(ctx: AppContext, request: gr.Request) -> None:
    ctx.policy.sign_out(request)
