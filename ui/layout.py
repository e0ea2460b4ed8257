"""The page's components, built inside a gr.Blocks and returned as a `Layout` (ui.app wires their events
to ui.handlers), with the app's CSS and theme. Sized to fit at 1024 pixels wide and up: nothing clipped,
example questions whole, nothing floating over the chat.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import gradio as gr

from . import render
from .handlers import AdminView, AppContext, ChatView, folders_html, source_choices, upload_label

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
.qa-passage { white-space: pre-wrap; font-size: .92em; line-height: 1.45; overflow-wrap: anywhere; }
.qa-release-title { margin: .2em 0; }
.qa-release-meta { opacity: .8; font-size: .9em; margin: 0 0 .6em 0; }
.qa-release-text { white-space: pre-wrap; line-height: 1.5; max-height: 32em; overflow-y: auto;
  overflow-wrap: anywhere; }
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
.qa-examples-head { font-size: .9em; opacity: .8; margin: 0; }
#examples .qa-example { white-space: normal; text-align: left; justify-content: flex-start; height: auto;
  font-weight: normal; overflow-wrap: anywhere; }
#release-pick input { text-overflow: ellipsis; padding-right: 1.8em; }
#chat .top-panel { display: none; }
"""


def theme() -> gr.themes.Base:
    """The default theme with system fonts (no web-font requests: the app works offline)."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


@dataclass
class Layout:
    """The components the handlers read and update; ChatView's and AdminView's fields are among them."""

    status: gr.HTML
    turns: gr.State
    chat: gr.Chatbot
    box: gr.Textbox
    ask_btn: gr.Button
    since: gr.Textbox
    until: gr.Textbox
    source_pick: gr.Dropdown
    sources_seen: gr.State
    examples: list[gr.Button]
    clear_btn: gr.Button
    sources: gr.HTML
    release_pick: gr.Dropdown
    release: gr.HTML
    signin_row: gr.Column
    admin_pw: gr.Textbox
    signin_btn: gr.Button
    admin_msg: gr.HTML
    admin_panel: gr.Column
    folders: gr.HTML
    rebuild_btn: gr.Button
    build_log: gr.HTML
    uploads: gr.File
    upload_btn: gr.Button
    upload_report: gr.HTML
    signout_btn: gr.Button

    def outputs(self, view: type[ChatView] | type[AdminView]) -> list:
        """The components a view's fields name, in its order (what a handler returning it updates)."""
        return [getattr(self, name) for name in view._fields]

    @property
    def filters(self) -> list:
        return [self.since, self.until, self.source_pick]


def build_layout(ctx: AppContext, title: str, examples: Sequence[str]) -> Layout:
    """The page, inside an open gr.Blocks: a header with the index status, the chat column and the side tabs."""
    parts: dict = {"turns": gr.State([])}
    with gr.Row(equal_height=False):
        gr.Markdown(f"## {render.escape(title)}\nAsk about the press releases; every answer is a quote from one of them.")
        # filled in when the page loads, so it is never a stale build-time value
        parts["status"] = gr.HTML('<div class="qa-status">Checking the index…</div>', elem_id="index-status",
                                  js_on_load=None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            parts.update(_chat_column(ctx, examples))
        with gr.Column(scale=2, min_width=300):
            with gr.Tabs():
                with gr.Tab("Sources", elem_id="sources-tab"):
                    parts.update(_sources_tab(ctx))
                with gr.Tab("Index", elem_id="index-tab"):
                    parts.update(_index_tab(ctx))
    return Layout(**parts)


def _chat_column(ctx: AppContext, examples: Sequence[str]) -> dict:
    """The chat (unlabelled, its corner icons hidden: they float over the bubbles as they scroll; "Clear
    conversation" clears it), the question box, the filters and the example questions as buttons that wrap
    (a gr.Dataset cut them mid-word)."""
    parts = {"chat": gr.Chatbot(
        show_label=False, elem_id="chat", height=520, render_markdown=False, sanitize_html=True,
        latex_delimiters=[], feedback_options=None, buttons=[],
        placeholder="Ask a question, or click an example below.",
    )}
    with gr.Row():
        parts["box"] = gr.Textbox(
            show_label=False, placeholder="Ask a question about the press releases…",
            elem_id="question", scale=6, lines=1, max_lines=4, autofocus=True, submit_btn=False,
        )
        parts["ask_btn"] = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
    with gr.Row(equal_height=False):
        parts.update(_filters(ctx))
    with gr.Column(elem_id="examples", visible=bool(examples)):
        gr.HTML('<p class="qa-examples-head">Example questions</p>', js_on_load=None)
        parts["examples"] = [gr.Button(q, size="sm", variant="secondary", elem_classes="qa-example")
                             for q in examples]
    parts["clear_btn"] = gr.Button("Clear conversation", variant="secondary", elem_id="clear")
    return parts


def _filters(ctx: AppContext) -> dict:
    """The release-date range and the source picker, folded away and empty by default (every release).

    Plain text boxes, so whatever is typed is sent and read or refused in the chat (gr.DateTime kept its last
    value that looked like YYYY-MM-DD, so "june 20" was ignored or drew a stale refusal). qa reads and checks
    the dates and sources."""
    parts = {}
    with gr.Column(scale=3, min_width=240):
        with gr.Accordion("Release dates", open=False, elem_id="date-range"):
            with gr.Row():
                parts["since"] = gr.Textbox(label="From (inclusive)", lines=1, max_lines=1, elem_id="since",
                                            placeholder="e.g. 20 June")
                parts["until"] = gr.Textbox(label="To (inclusive)", lines=1, max_lines=1, elem_id="until",
                                            placeholder="e.g. 26/06/2024")
            gr.HTML('<p class="qa-date-note">Empty: no limit. A day as 2024-06-20, 20 June or '
                    "20/06/2024 (day first); without a year, the releases' year.</p>",
                    elem_id="date-note", js_on_load=None)
    with gr.Column(scale=2, min_width=200):
        with gr.Accordion("Sources", open=False, elem_id="source-filter"):
            choices = source_choices(ctx.assistant)
            parts["source_pick"] = gr.Dropdown(label="From these sources", choices=choices, value=[],
                                               multiselect=True, interactive=True, elem_id="source-pick",
                                               info="empty: every source")
            parts["sources_seen"] = gr.State(choices)
    return parts


def _sources_tab(ctx: AppContext) -> dict:
    """The passages behind the last answer, and any release of the index to read in full."""
    return {
        "sources": gr.HTML(render.sources_html(None), elem_id="sources", js_on_load=None),
        "release_pick": gr.Dropdown(label="Open a release", choices=ctx.release_choices(), value=None,
                                    interactive=True, elem_id="release-pick"),
        "release": gr.HTML(render.release_html(None), elem_id="release", js_on_load=None),
    }


def _index_tab(ctx: AppContext) -> dict:
    """Upload, rebuild and the server's folders, for admins only: shown from the start when everyone is
    (localhost, no password), after sign-in otherwise; the folders are not even in the page's config until
    then. The handlers check too."""
    policy, parts = ctx.policy, {}
    if not policy.admin_enabled:
        gr.HTML(f'<p class="qa-admin-note">{render.escape(policy.refusal())}</p>',
                elem_id="read-only-note", js_on_load=None)
    with gr.Column(visible=policy.needs_sign_in, elem_id="admin-signin") as parts["signin_row"]:
        parts["admin_pw"] = gr.Textbox(label="Admin password", type="password", lines=1, max_lines=1,
                                       elem_id="admin-password", info="Admins can add releases and rebuild the index.")
        parts["signin_btn"] = gr.Button("Sign in as admin", elem_id="admin-signin-btn")
    parts["admin_msg"] = gr.HTML("", elem_id="admin-message", js_on_load=None)
    with gr.Column(visible=policy.everyone_admin, elem_id="admin-panel") as parts["admin_panel"]:
        parts["folders"] = gr.HTML(folders_html(ctx) if policy.everyone_admin else "", elem_id="folders",
                                   js_on_load=None)
        parts["rebuild_btn"] = gr.Button("Rebuild index from corpus", elem_id="rebuild")
        parts["build_log"] = gr.HTML("", elem_id="build-log", js_on_load=None)
        parts["uploads"] = gr.File(label=upload_label(), file_count="multiple", type="filepath", elem_id="upload")
        parts["upload_btn"] = gr.Button("Add files and rebuild", elem_id="upload-btn")
        parts["upload_report"] = gr.HTML("", elem_id="upload-report", js_on_load=None)
        parts["signout_btn"] = gr.Button("Sign out", variant="secondary", size="sm", visible=policy.needs_sign_in,
                                         elem_id="admin-signout")
    return parts
