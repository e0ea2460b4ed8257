"""Speed and memory of the assistant, warm, in one process.

    python scripts/benchmark.py [--corpus corpus/] [--questions FILE] [-n 200]

Prints the index build time for the corpus, p50/p95 of `Assistant.ask()` (retrieval and the
reader's one forward pass over the candidate windows), p50/p95 of encoding the bare question
with the embedding model, their ratio (target: at most config.SPEED_BUDGET, 60 for the 12-layer reader),
and the peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def questions_from(path: Path) -> list[str]:
    if path.suffix == ".json":
        d = json.loads(path.read_text(encoding="utf-8"))
        return [q["question"] for a in d["data"] for p in a["paragraphs"] for q in p["qas"]]
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> int:
    from index import config

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(config.corpus_dir()))
    ap.add_argument("--questions", default=str(ROOT.parent / "shared" / "data" / "nato_dev.jsonl"),
                    help="a .jsonl or SQuAD .json question file (default: the shared NATO dev set)")
    ap.add_argument("-n", type=int, default=200, help="questions to time (cycled)")
    args = ap.parse_args()

    from index.build import build_index
    from index.embedder import encode_query, load_model
    from qa import Assistant

    t = time.perf_counter()
    load_model()
    print(f"model load                 {time.perf_counter() - t:6.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        report = build_index(args.corpus, Path(tmp) / "index", full=True)
        print(f"index build (full)         {report.seconds:6.2f} s  "
              f"({report.releases} releases, {report.chunks} chunks, {report.chunks_embedded / report.seconds:.1f} chunks/s)")
        t = time.perf_counter()
        assistant = Assistant(Path(tmp) / "index")
        print(f"index load                 {time.perf_counter() - t:6.2f} s")
        t = time.perf_counter()
        assistant.reader  # noqa: B018  (loads the reader model)
        print(f"reader load                {time.perf_counter() - t:6.2f} s")
        qs = questions_from(Path(args.questions)) if Path(args.questions).exists() else [
            "Who leads the organisation?", "When was the agreement signed?", "How many countries took part?"]
        qs = (qs * (args.n // max(len(qs), 1) + 1))[:args.n]
        for q in qs[:10]:  # warm up both paths
            assistant.ask(q)
            encode_query(q)
        ask, enc = [], []
        for q in qs:  # interleaved, so both see the same machine state
            t = time.perf_counter()
            encode_query(q)
            enc.append(time.perf_counter() - t)
            t = time.perf_counter()
            assistant.ask(q)
            ask.append(time.perf_counter() - t)
    ms = lambda x: 1000 * x  # noqa: E731
    print(f"encode question  p50 {ms(statistics.median(enc)):7.2f} ms   p95 {ms(percentile(enc, 95)):7.2f} ms")
    print(f"ask()            p50 {ms(statistics.median(ask)):7.2f} ms   p95 {ms(percentile(ask, 95)):7.2f} ms")
    from qa.config import SPEED_BUDGET

    print(f"ask / encode p50 ratio     {statistics.median(ask) / statistics.median(enc):6.2f}  (target <= {SPEED_BUDGET})")
    print(f"peak RSS                   {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:6.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
