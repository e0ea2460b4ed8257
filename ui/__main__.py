"""`python -m ui`: start the web app on the corpus's index, building the index first if needed.

    python -m ui [--host HOST] [--port PORT] [--index DIR] [--corpus DIR] [--watch]
                 [--admin-password PASSWORD] [--read-only] [--auth USER:PASSWORD] [--auth-file FILE]

The port defaults to $GRADIO_SERVER_PORT or 7860, the host to $GRADIO_SERVER_NAME or
127.0.0.1, the folders to those of index.config (QA_INDEX_DIR / QA_CORPUS_DIR).

Who may upload releases and rebuild the index (ui.access): everyone on localhost with no
admin password; only those signed in with --admin-password ($QA_ADMIN_PASSWORD) when one is
set; nobody with --read-only, or when served on another address with no password (a line
says so at start). --auth / --auth-file put the whole app, /ask included, behind a login.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ui", description="Start the press-release Q&A web app.")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="interface to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                   help="port to listen on (default: $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--index", default=None, help="index folder (default: $QA_INDEX_DIR or <project>/.index)")
    p.add_argument("--corpus", default=None,
                   help="corpus folder to build from and rebuild from (default: the one the index was built from, "
                        "else $QA_CORPUS_DIR or <project>/corpus)")
    p.add_argument("--watch", action="store_true",
                   help="also watch the corpus folder and update the index when it changes (index.watch)")
    p.add_argument("--admin-password", default=None, metavar="PASSWORD",
                   help="enable uploads and rebuilds for whoever signs in with this password on the Index tab "
                        "(default: $QA_ADMIN_PASSWORD; without one they are on only when served on localhost)")
    p.add_argument("--read-only", action="store_true",
                   help="no uploads or rebuilds from the app, even on localhost (--watch still rebuilds)")
    p.add_argument("--auth", action="append", default=None, metavar="USER:PASSWORD",
                   help="require this login for the whole app and its API (repeat for more users)")
    p.add_argument("--auth-file", default=None, metavar="FILE",
                   help="require a login listed in FILE: one user:password a line (# starts a comment)")
    p.add_argument("--no-warmup", action="store_true", help="start serving without trying the example questions first (they are then shown unchecked, "
                        "and the models load on the first question)")
    return p


def open_assistant(index_dir, corpus_dir):
    """A qa.Assistant on `index_dir`; when there is no usable index there, build it from
    `corpus_dir` first (with a progress bar) and try again."""
    import qa
    from index.errors import IndexStoreError

    try:
        return qa.Assistant(index_dir=index_dir)
    except IndexStoreError as exc:
        print(f"{exc}\nBuilding the index from {corpus_dir} ...", flush=True)
    from index.build import build_index
    from index.progress import stage_bar

    update, close = stage_bar()
    try:
        report = build_index(corpus_dir=corpus_dir, index_dir=index_dir, progress=update)
    finally:
        close()
    print(report.summary(), flush=True)
    return qa.Assistant(index_dir=index_dir)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    t0 = time.perf_counter()
    import index.config as cfg
    from index.errors import CorpusError, IndexStoreError
    from qa.reader import ReaderError

    from .access import AccessPolicy, AuthError, auth_users

    try:
        users = auth_users(args.auth, args.auth_file)
    except AuthError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    policy = AccessPolicy.from_options(args.host, admin_password=args.admin_password, read_only=args.read_only)
    index_dir = cfg.index_dir(args.index)
    corpus_arg = cfg.corpus_dir(args.corpus)
    try:
        assistant = open_assistant(index_dir, corpus_arg)
        status = assistant.status()
    except (CorpusError, IndexStoreError, ReaderError) as exc:
        print(f"Cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    corpus_dir = cfg.corpus_dir(args.corpus) if args.corpus else (status.get("corpus_dir") or corpus_arg)

    from .api import DEFAULT_EXAMPLES, pick_examples

    # Trying the example questions loads the models before the first user waits; it runs
    # while gradio is imported.
    picked: dict[str, list[str]] = {}
    warm = threading.Thread(target=lambda: picked.setdefault("examples", pick_examples(assistant)), daemon=True)
    if not args.no_warmup:
        warm.start()
    from .app import build_app, launch, local_url

    if not args.no_warmup:
        warm.join()
    examples = picked.get("examples") or DEFAULT_EXAMPLES
    demo = build_app(assistant, examples=examples, corpus_dir=corpus_dir, index_dir=index_dir, policy=policy)
    if args.watch:  # a failed build is said in one line and watching goes on (index.watch)
        from index.watch import watch_in_background

        watch_in_background(corpus_dir, index_dir)
    try:
        url = launch(demo, host=args.host, port=args.port,
                     **({"auth": users, "auth_message": "Sign in to ask about the press releases."} if users else {}))
    except OSError as exc:
        print(f"Cannot start the server on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 2
    shown = local_url(args.host, args.port) if args.host in ("0.0.0.0", "", "::") else url
    print(f"{status.get('releases', '?')} releases, {status.get('chunks', '?')} chunks from {corpus_dir}; "
          f"ready in {time.perf_counter() - t0:.1f} s.", flush=True)
    notice = policy.startup_notice()
    if notice:
        print(notice, flush=True)
    print(f"Running on local URL: {shown}", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
