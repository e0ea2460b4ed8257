"""The Gradio app: a chat over the press releases, the passages behind each answer, the
index status with a rebuild button, an upload of new releases, and the `/ask` API endpoint.

`build_app(assistant)` returns the gr.Blocks: ui.layout builds the components, ui.handlers holds
what their events do (module-level functions taking an AppContext), and `_wire` joins them.
`launch(demo, ...)` starts it with the app's CSS and theme. Questions go through one `Asker`
(the chat, `/ask` and `POST /api/ask`): up to ASK_CONCURRENCY answered at a time, up to
ASK_QUEUE_SIZE more waiting; past that a question is told at once that the app is busy.
Rebuilds and uploads run as their own queued events, one at a time, so the chat keeps
answering from the current index while a new one is built. Who may rebuild and upload is
decided on the server by a ui.access.AccessPolicy (everyone on localhost by default).
"""
from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any, Callable, Sequence

import gradio as gr

from . import handlers as h
from .access import AccessPolicy
from .api import DEFAULT_EXAMPLES, Asker
from .gate import Gate
from .layout import CSS, Layout, build_layout, theme

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

#: Seconds between refreshes of the index status (it notices a changed corpus).
STATUS_REFRESH_S = 30.0

TITLE = "Press release Q&A"


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
    gate = Gate(ASK_CONCURRENCY if ask_concurrency is None else ask_concurrency,
                ASK_QUEUE_SIZE if ask_queue_size is None else ask_queue_size, wait_s=ASK_WAIT_S)
    ctx = _context(Asker(assistant, gate), policy or AccessPolicy(), corpus_dir, index_dir)
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        page = build_layout(ctx, title, list(DEFAULT_EXAMPLES if examples is None else examples))
        _wire(demo, page, ctx)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_MAX_SIZE)
    demo.asker = ctx.asker  # launch() serves it as POST /api/ask too, behind the same gate
    return demo


def _context(asker: Asker, policy: AccessPolicy, corpus_dir: str | os.PathLike | None,
             index_dir: str | os.PathLike | None) -> h.AppContext:
    """The handlers' context; folders not given are those the index reports, else index.config's."""
    import index.config as cfg

    statuses = h.StatusCache(asker.assistant)
    status = statuses.get()[0] or {}
    return h.AppContext(asker, policy, statuses,
                        corpus_dir=Path(corpus_dir or status.get("corpus_dir") or cfg.corpus_dir()),
                        index_dir=Path(index_dir or status.get("index_dir") or cfg.index_dir()))


def _bind(handler: Callable, ctx: h.AppContext) -> Callable:
    """`handler` with `ctx` as its first argument, as a bound method: Gradio reads a method's signature and
    type hints (so gr.Request and gr.Progress are still passed), which it cannot from a functools.partial."""
    return types.MethodType(handler, ctx)


def _wire(demo: gr.Blocks, page: Layout, ctx: h.AppContext) -> None:
    """Every event of the page, and the `/ask`, `/rebuild`, `/upload`, `/admin_login` API endpoints."""
    chat, admin = page.outputs(h.ChatView), page.outputs(h.AdminView)
    # questions are bounded by the Asker's gate (so past the bound they hear "busy" at once), not by Gradio's queue
    asking = dict(concurrency_id="ask", concurrency_limit=None, api_visibility="private")
    status = dict(concurrency_id="status", concurrency_limit=None, show_progress="hidden", api_visibility="private")
    respond = _bind(h.respond, ctx)
    for trigger, question in [(page.box.submit, page.box), (page.ask_btn.click, page.box),
                              *((b.click, b) for b in page.examples)]:
        trigger(respond, [question, page.turns, *page.filters], chat, **asking)
    page.clear_btn.click(_bind(h.clear, ctx), None, chat, queue=False, api_visibility="private")
    page.release_pick.input(_bind(h.open_release, ctx), [page.release_pick, page.turns], page.release,
                            api_visibility="private", concurrency_limit=None)
    # the status changes when the page loads and after a rebuild (button, upload, --watch): so may what it holds
    page.status.change(_bind(h.refresh_sources, ctx), [page.source_pick, page.sources_seen],
                       [page.source_pick, page.sources_seen], **status)
    page.status.change(_bind(h.refresh_releases, ctx), [page.release_pick], page.release_pick, **status)
    gr.Timer(STATUS_REFRESH_S).tick(_bind(h.status_markup, ctx), None, page.status, **status)
    demo.load(_bind(h.fresh_status_markup, ctx), None, page.status, **status)
    # callable by gradio_client too (an admin's scripts), and refused there like on the page
    build = dict(concurrency_id="build", concurrency_limit=1, api_visibility="undocumented")
    page.rebuild_btn.click(_bind(h.rebuild, ctx), None, [page.status, page.build_log], api_name="rebuild", **build)
    page.upload_btn.click(_bind(h.upload, ctx), [page.uploads], [page.status, page.upload_report, page.uploads],
                          api_name="upload", **build)
    signing = dict(concurrency_id="admin", concurrency_limit=1, show_progress="hidden")
    sign_in = _bind(h.sign_in, ctx)
    page.signin_btn.click(sign_in, [page.admin_pw], admin, api_name="admin_login", api_visibility="undocumented",
                          **signing)
    page.admin_pw.submit(sign_in, [page.admin_pw], admin, api_visibility="private", **signing)
    page.signout_btn.click(_bind(h.sign_out, ctx), None, admin, api_name="admin_logout",
                           api_visibility="undocumented", **signing)
    if ctx.policy.needs_sign_in:
        demo.unload(_bind(h.forget_session, ctx))  # a closed or reloaded page is signed out
    gr.api(_bind(h.ask, ctx), api_name="ask", concurrency_id="ask", concurrency_limit=None)


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
        theme=theme(), css=CSS, footer_links=["api", "gradio"],
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

