"""Command line: `python -m index build [--corpus DIR] [--index DIR] [--full] [--json] [--no-wait]
[--vector-index KIND] [--device DEVICE] [--ray [ADDRESS] [--workers N]]`, `watch` and
`fetch FEED_URL [--corpus DIR] [--every MINUTES] [--json]`."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import config
from .errors import CorpusError, IndexStoreError
from .progress import say_waiting, stage_bar


def _use_device(name: str) -> None:
    """Embed on `name` in this process (and its Ray workers, which inherit the environment)."""
    import torch

    name = name.strip().lower()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise IndexStoreError(f"--device {name} was asked for, but torch sees no GPU here; use --device cpu or auto.")
    if name not in ("auto", "cpu", "mps") and not name.startswith("cuda"):
        raise IndexStoreError(f"--device {name} is not a device; give auto, cpu, cuda or cuda:N.")
    os.environ[config.DEVICE_ENV] = name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m index", description="Build or watch the release index.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("build", "build or refresh the index from the corpus"),
                       ("watch", "rebuild the index shortly after corpus files change")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--corpus", help="corpus folder (default: $QA_CORPUS_DIR or corpus/)")
        p.add_argument("--index", help="index folder (default: $QA_INDEX_DIR or .index/)")
    build = sub.choices["build"]
    build.add_argument("--full", action="store_true", help="re-embed everything instead of only what changed")
    build.add_argument("--json", action="store_true", help="print the report as one JSON object")
    build.add_argument("--no-wait", action="store_true", help="fail at once if another build is running")
    build.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="split and embed on Ray (the `scale` extra): on the cluster at ADDRESS (host:port of "
                            "its head, ray://host:port, or auto), or on a Ray started on this machine when no "
                            "address is given")
    build.add_argument("--workers", type=int, metavar="N",
                       help="with --ray: releases embedded by N workers at once (default: the cluster's CPUs)")
    build.add_argument("--vector-index", choices=("auto", "flat", "ivf", "hnsw"),
                       help="FAISS index type: flat (exact), ivf or hnsw (approximate); kept by later builds "
                            "until `auto` chooses by size again (default: the type kept, else by size)")
    build.add_argument("--device", metavar="DEVICE",
                       help="where to embed: auto (a GPU when torch sees one; the default), cpu, cuda, cuda:N")
    watch = sub.choices["watch"]
    watch.add_argument("--debounce", type=float, default=2.0, help="seconds of quiet before rebuilding")
    fetch = sub.add_parser("fetch", help="save the pages of a press office's RSS or Atom feed into the corpus")
    fetch.add_argument("feed_url", metavar="FEED_URL", help="the feed's http or https address")
    fetch.add_argument("--corpus", help="corpus folder (default: $QA_CORPUS_DIR or corpus/)")
    fetch.add_argument("--every", type=float, metavar="MINUTES", help="read the feed again every MINUTES until Ctrl-C")
    fetch.add_argument("--json", action="store_true", help="print each report as one JSON object")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        if args.every is not None and not args.every > 0:
            parser.error("--every must be a number of minutes above 0")
        from .fetch import run as run_fetch

        return run_fetch(args.feed_url, args.corpus, every=args.every, as_json=args.json)
    if args.command == "build" and args.workers is not None:
        if args.ray is None:
            parser.error("--workers goes with --ray")
        if args.workers < 1:
            parser.error("--workers must be at least 1")

    corpus, index = config.corpus_dir(args.corpus), config.index_dir(args.index)
    try:
        if args.command == "watch":
            from .watch import watch as run_watch

            run_watch(corpus, index, debounce=args.debounce)
            return 0
        from .build import build_index

        processor = None
        if args.device:
            _use_device(args.device)
        if args.ray is not None:
            from .distributed import ray_processor

            # Checks the address (and that Ray is installed) before the build starts; Ray itself is
            # started only when there is something to embed.
            processor = ray_processor(args.ray, workers=args.workers)
        update, close = stage_bar() if not args.json else (say_waiting, lambda: None)
        try:
            report = build_index(corpus, index, full=args.full, progress=update,
                                 lock_timeout=0 if args.no_wait else -1, processor=processor,
                                 vector_kind=args.vector_index)
        finally:
            close()
    except (CorpusError, IndexStoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted; the previous index is left as it was.", file=sys.stderr)
        return 130
    if args.json:
        d = report.to_dict()
        print(json.dumps({k: d[k] for k in ("added", "changed", "removed", "unchanged", "chunks_embedded",
                                            "seconds", "releases", "chunks", "full", "reused", "written", "skipped",
                                            "note")}))
    else:
        print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
