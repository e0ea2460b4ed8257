"""Benchmark the index build on a synthetic corpus of a few thousand releases.

Releases are made by recombining paragraphs of the bundled SQuAD 2.0 paragraphs
(../shared/data/squad2_dev_subset.json) or of the releases of a corpus folder (--from-corpus),
written to a temporary folder. Prints: full build time and chunks/s, a no-op rebuild,
the rebuild after one release changed (time and chunks embedded, checked to be that
release's chunks only), index size on disk and peak memory.

    .venv/bin/python scripts/bench_index.py               # default size, a few minutes on 2 cores
    .venv/bin/python scripts/bench_index.py --releases 300 --json
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import generations, store  # noqa: E402
from index.build import build_index  # noqa: E402
from index.releases import read_corpus  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "squad2_dev_subset.json"
PLACES = ["Brussels", "Washington", "Vilnius", "Madrid", "Oslo", "Warsaw", "Rome", "Ankara", "Ottawa", "Tallinn"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def squad_paragraphs(path: Path) -> list[tuple[str, str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [(article["title"].replace("_", " "), p["context"].strip())
            for article in data["data"] for p in article["paragraphs"] if p["context"].strip()]


def corpus_paragraphs(folder: Path) -> list[tuple[str, str]]:
    out = []
    for r in read_corpus(folder).releases:
        out += [(r.title, block.strip()) for block in r.text.split("\n") if len(block.split()) >= 12]
    return out


def make_corpus(folder: Path, paragraphs: list[tuple[str, str]], n: int, seed: int) -> None:
    """`n` releases of one or two paragraphs each; most one to a file, some files holding several releases."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    multi: list[str] = []
    for i in range(n):
        picks = rng.sample(paragraphs, rng.choice((1, 2)))
        topic = picks[0][0]
        date = f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2015, 2024)}"
        title = f"{topic}: update {i + 1} from {rng.choice(PLACES)}"
        body = f"{rng.choice(PLACES)}, {date}\n" + "\n".join(p for _, p in picks) + "\n"
        if i % 10 == 9:  # every tenth release goes to a multi-release digest file
            multi.append(f"{title}\n\nSource: Synthetic Press Office\n{body}")
            if len(multi) == 5:
                (folder / f"digest-{i:05d}.txt").write_text("\n".join(multi), encoding="utf-8")
                multi = []
        elif i % 2:
            (folder / f"release-{i:05d}.md").write_text(f"# {title}\n\n{body}", encoding="utf-8")
        else:
            (folder / f"release-{i:05d}.txt").write_text(f"{title}\n\n{body}", encoding="utf-8")
    if multi:
        (folder / "digest-last.txt").write_text("\n".join(multi), encoding="utf-8")


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=2000, help="number of synthetic releases (default 2000)")
    parser.add_argument("--from-corpus", type=Path, help="recombine the paragraphs of this corpus folder instead")
    parser.add_argument("--squad", type=Path, default=SQUAD, help="SQuAD 2.0 json whose paragraphs are recombined")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", type=Path, help="build in this (new) folder and keep it")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    paragraphs = corpus_paragraphs(args.from_corpus) if args.from_corpus else squad_paragraphs(args.squad)
    if len(paragraphs) < 3:
        parser.error("need at least three paragraphs to recombine")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-index-"))
    corpus, index = work / "corpus", work / "index"
    say = (lambda *_: None) if args.json else (lambda *a: print(*a, flush=True))
    figures: dict = {}
    try:
        t = time.perf_counter()
        make_corpus(corpus, paragraphs, args.releases, args.seed)
        read = read_corpus(corpus)
        figures.update(releases=len(read.releases), files=read.files, corpus_mb=folder_size(corpus) / 1e6)
        say(f"Corpus: {len(read.releases)} releases in {read.files} files, {figures['corpus_mb']:.1f} MB "
            f"({time.perf_counter() - t:.1f} s to write), in {work}")

        stages: dict[str, float] = {}
        last = {"stage": None, "t": time.perf_counter()}

        def progress(done: int, total: int, stage: str) -> None:
            now = time.perf_counter()
            if stage != last["stage"]:
                if last["stage"]:
                    stages[last["stage"]] = stages.get(last["stage"], 0) + now - last["t"]
                last.update(stage=stage, t=now)

        t = time.perf_counter()
        full = build_index(corpus, index, full=True, progress=progress)
        stages[last["stage"]] = stages.get(last["stage"], 0) + time.perf_counter() - last["t"]
        data = store.load(index)
        n_sent = sum(len(a.sentences) for a in data.annotations.values())
        figures.update(full_build_s=full.seconds, chunks=full.chunks, sentences=n_sent,
                       chunks_per_s=full.chunks_embedded / full.seconds,
                       stage_s={k: round(v, 1) for k, v in stages.items()})
        say(f"Full build: {full.seconds:.1f} s for {full.chunks} chunks ({n_sent} sentences, not embedded) "
            f"-> {figures['chunks_per_s']:.1f} chunks/s; stages: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))
        gen = generations.current_generation(index)
        figures.update(index_mb=folder_size(gen) / 1e6,
                       files_mb={p.name: round(p.stat().st_size / 1e6, 2) for p in sorted(gen.iterdir()) if p.is_file()}
                       | {"bm25/": round(folder_size(gen / "bm25") / 1e6, 2)})
        say(f"Index size on disk: {figures['index_mb']:.1f} MB (" + ", ".join(
            f"{k} {v:.1f} MB" for k, v in figures["files_mb"].items()) + ")")

        t = time.perf_counter()
        noop = build_index(corpus, index)
        assert not noop.written and noop.chunks_embedded == 0
        figures["noop_rebuild_s"] = noop.seconds
        say(f"Rebuild with nothing changed: {noop.seconds:.2f} s, nothing written")

        target = next(r for r in data.releases.values() if r.path.startswith("release-"))
        path = corpus / target.path
        path.write_text(path.read_text(encoding="utf-8").rstrip("\n")
                        + "\nThe office added one more sentence to this release today.\n", encoding="utf-8")
        one = build_index(corpus, index)
        after = store.load(index)
        own = sum(1 for c in after.chunks.values() if c.release_id == target.release_id)
        assert (one.changed, one.added, one.removed) == (1, 0, 0), one
        assert one.chunks_embedded == own, (one.chunks_embedded, own)
        figures.update(one_changed_s=one.seconds, one_changed_chunks_embedded=one.chunks_embedded,
                       one_changed_release_chunks=own)
        say(f"Rebuild after one release changed: {one.seconds:.1f} s, {one.chunks_embedded} chunks embedded "
            f"(= that release's {own} chunks)")

        figures["peak_rss_mb"] = peak_rss_mb()
        say(f"Peak memory (RSS): {figures['peak_rss_mb']:.0f} MB")
        if args.json:
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
