"""Save a screenshot of the app answering a question, in headless Chromium.

    python -m ui.screenshot docs/screenshot.png [--url URL] [--index DIR] [--question Q ...]

Without --url the app is started in this process on a free port, on --index (default: the
project's index, built first if missing). Uses the system Chromium (/usr/bin/chromium or
$CHROMIUM) through Playwright; no browser download is needed.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Sequence

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: the conversation the README's screenshot shows: a question and its follow-up
DEFAULT_CONVERSATION = ("Who will succeed Jens Stoltenberg as Secretary General?", "When does he take office?")


def launch_browser(playwright):
    """Headless system Chromium through Playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def ask_in_page(page, question: str, timeout_ms: int = 60_000) -> None:
    """Type `question` into the app's box, send it, and wait for the reply to it."""
    replies = page.locator("#chat .qa-reply")
    before = replies.count()
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    replies.nth(before).wait_for(state="visible", timeout=timeout_ms)


def capture(url: str, out: str | os.PathLike, question: str | Sequence[str] = DEFAULT_CONVERSATION,
            width: int = 1400, height: int = 900, browser=None, full_page: bool = False) -> Path:
    """Open `url`, ask `question` (or each question of a conversation, in turn), and save a
    screenshot of the page to `out`.

    Uses `browser` (a Playwright Browser) when given, else starts headless Chromium.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = launch_browser(p)
            try:
                return capture(url, out, question, width, height, browser, full_page)
            finally:
                browser.close()
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(url)
        page.locator("#question textarea").wait_for(timeout=60_000)
        for q in ([question] if isinstance(question, str) else question):
            ask_in_page(page, q)
        page.wait_for_timeout(500)  # let the sources panel and release view settle
        page.screenshot(path=str(out), full_page=full_page)
    finally:
        context.close()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ui.screenshot", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="PNG file to write")
    p.add_argument("--url", help="a running app (default: start one here)")
    p.add_argument("--index", help="index folder when starting the app here")
    p.add_argument("--corpus", help="corpus folder to build a missing index from")
    p.add_argument("--question", action="append",
                   help="question to ask; repeat it for a conversation (default: the Rutte question and its follow-up)")
    args = p.parse_args(argv)
    if args.url:
        capture(args.url, args.out, args.question or DEFAULT_CONVERSATION)
    else:
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        import index.config as cfg

        from .__main__ import open_assistant
        from .api import pick_examples
        from .app import build_app, launch

        assistant = open_assistant(cfg.index_dir(args.index), cfg.corpus_dir(args.corpus))
        examples = pick_examples(assistant)
        demo = build_app(assistant, examples=examples)
        url = launch(demo, port=_free_port())
        try:
            capture(url, args.out, args.question or DEFAULT_CONVERSATION)
        finally:
            demo.close()
    print(f"Saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
