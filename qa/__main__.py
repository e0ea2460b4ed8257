"""Command line: `python -m qa "question" [--index DIR] [--since DAY] [--until DAY] [--source NAME]... [--json]`
prints the answer, its sentence, its release and how sure it is."""
from __future__ import annotations

import argparse
import json
import shlex
import sys


def stale_note(status: dict) -> str | None:
    """One line saying the index no longer matches its corpus folder and the command that rebuilds it, when
    `status` (Assistant.status()) says it is stale; None when it is up to date."""
    if not status.get("stale"):
        return None
    corpus, index = shlex.quote(str(status.get("corpus_dir", ""))), shlex.quote(str(status.get("index_dir", "")))
    return (f"note: the index is out of date (releases in {corpus} were added, changed or removed since it was "
            f"built); rebuild it with: python -m index build --corpus {corpus} --index {index}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa", description="Ask the release index a question.")
    parser.add_argument("question", nargs="+", help="the question (quote it)")
    parser.add_argument("--index", help="index folder (default: $QA_INDEX_DIR or .index/)")
    parser.add_argument("--since", metavar="DAY", help="only releases dated on or after this day (2024-06-20, "
                        "'20 June', 20/06/2024)")
    parser.add_argument("--until", metavar="DAY", help="only releases dated on or before this day")
    parser.add_argument("--source", action="append", metavar="NAME",
                        help="only releases from this source (any case; repeat for several)")
    parser.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    args = parser.parse_args(argv)

    from index.errors import IndexStoreError

    from .assistant import Assistant, InvalidQuestion
    from .reader import ReaderError

    try:
        assistant = Assistant(args.index)
        answer = assistant.ask(" ".join(args.question), since=args.since, until=args.until, source=args.source)
    except (IndexStoreError, InvalidQuestion, ReaderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    note = stale_note(assistant.status())
    if note:
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1))
        return 0
    top = answer.sources[0] if answer.sources else None
    cite = f"{top.title}" + (f" ({top.date})" if top and top.date else "") if top else ""
    if answer.answered:
        print(f"Answer:     {answer.text}")
        print(f"Sentence:   {answer.evidence}")
        print(f"Release:    {cite}")
        print(f"Confidence: {answer.label} (score {answer.score:.2f})")
    else:
        print(f"No answer: {answer.message}")
        for s in answer.sources[:3]:
            cite = s.title + (f" ({s.date})" if s.date else "")
            print(f"  - {cite}: {' '.join(s.text.split())[:160]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
