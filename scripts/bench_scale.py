"""Benchmark the index by size: build and query figures for 10^3 .. 10^6 chunks, printed as one table.

For each size (chunks) a synthetic corpus of press releases is made from the paragraphs of
../shared/data/squad_train_pool.json (one or two paragraphs per release, a dateline such as
"Brussels, 12 March 2021 – " and a title; digest files of 50 releases each), then:

- build, in a fresh process (its peak RSS is its own), in one of three modes:
    real        `build_index(corpus, index)`: reading, sentences, chunking, embedding, BM25, SQLite, FAISS;
    synthetic   the same build with a processor that runs `pipeline.split` for real and fills in synthetic
                vectors instead of running the model (as scripts/bench_vectors.py makes them: a real
                all-MiniLM-L6-v2 vector of the chunk's paragraph + noise along the real covariance, median
                cosine 0.80 to it); everything else is the real build;
    writer      (10^6 by default) no corpus files: releases of one paragraph each, their sentences and
                chunks split for real once per distinct paragraph (2,581) and reused, synthetic vectors,
                fed straight to `writer.GenerationWriter` (SQLite, vectors, BM25, FAISS are real);
  then, in the same process, the bare encode rate of the model on the index's own chunk documents
  (all chunks, or a random sample of --encode-sample), and build/encode. For synthetic and writer builds
  the ratio is projected: build time without the vector making + chunks / encode rate.
- query, in another fresh process: `qa.Assistant(index).ask()` of 40 questions of the paragraphs used
  (3 warm-up questions first), single FAISS searches with one thread (`index.vectors.search`, k = 10),
  recall@10 against exact search over the stored vectors for 200 question vectors and 200 perturbed
  stored vectors (cosine ~0.9 to the original), its peak RSS and load time.

    .venv/bin/python scripts/bench_scale.py                         # 10^3, 10^4 real; 10^5, 10^6 synthetic
    .venv/bin/python scripts/bench_scale.py --sizes 1000,3000 --real-up-to 1000 --json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_index import MONTHS, PLACES, folder_size, peak_rss_mb  # noqa: E402
from bench_vectors import rss_mb, timed  # noqa: E402

POOL = ROOT.parent / "shared" / "data" / "squad_train_pool.json"
SOURCE = "Synthetic Press Office"
PER_FILE = 50  # releases per digest file
FILES_PER_DIR = 200
K = 10
if not os.environ.get("BENCH_SCALE_T0", "").replace(".", "", 1).isdigit():
    os.environ["BENCH_SCALE_T0"] = str(time.time())
T0 = float(os.environ["BENCH_SCALE_T0"])  # children log on the parent's clock


def log(msg: str) -> None:
    print(f"[bench-scale {time.time() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def cpu_s() -> float:
    """CPU seconds (user + system) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_now_mb() -> dict:
    """Private (anon) and file-backed resident MB of this process now."""
    return {k: round(v, 1) for k, v in rss_mb().items()}


# -- the corpus ---------------------------------------------------------------------------------------------

def pool_paragraphs() -> list[dict]:
    """The training pool's paragraphs: article title, text (one line), answerable questions with answers."""
    data = json.loads(POOL.read_text(encoding="utf-8"))["data"]
    out = []
    for article in data:
        for p in article["paragraphs"]:
            text = " ".join(p["context"].split())
            qas = [(q["question"], [a["text"] for a in q["answers"]]) for q in p["qas"]
                   if not q.get("is_impossible") and q["answers"]]
            out.append({"title": article["title"].replace("_", " "), "text": text, "qas": qas})
    return out


def dateline(rng: random.Random) -> tuple[str, str]:
    """('Brussels, 12 March 2021 – ', '2021-03-12')."""
    d, m, y = rng.randint(1, 28), rng.randrange(12), rng.randint(2015, 2024)
    return f"{rng.choice(PLACES)}, {d} {MONTHS[m]} {y} – ", f"{y:04d}-{m + 1:02d}-{d:02d}"


def make_releases(paragraphs: list[dict], n: int, seed: int):
    """`n` releases (title, body, paragraph numbers) of one or two paragraphs each."""
    rng = random.Random(seed)
    for i in range(n):
        picks = rng.sample(range(len(paragraphs)), rng.choice((1, 2)))
        lead, _ = dateline(rng)
        title = f"{paragraphs[picks[0]]['title']}: update {i + 1} from {rng.choice(PLACES)}"
        body = lead + "\n".join(paragraphs[k]["text"] for k in picks)
        yield title, body, picks


def write_corpus(folder: Path, paragraphs: list[dict], n: int, seed: int) -> set[int]:
    """Write `n` releases as digest files of PER_FILE releases; returns the paragraph numbers used."""
    used: set[int] = set()
    batch: list[str] = []
    files = 0

    def flush():
        nonlocal files, batch
        sub = folder / f"part-{files // FILES_PER_DIR:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"digest-{files:06d}.txt").write_text("\n".join(batch), encoding="utf-8")
        files += 1
        batch = []

    for title, body, picks in make_releases(paragraphs, n, seed):
        used.update(picks)
        batch.append(f"{title}\n\nSource: {SOURCE}\n\n{body}\n")
        if len(batch) == PER_FILE:
            flush()
    if batch:
        flush()
    return used


_LEAD = re.compile(r"^[A-Z][a-z]+, \d{1,2} [A-Z][a-z]+ \d{4} – ")


class ParagraphOf:
    """Which pool paragraph a chunk of a synthetic release starts in (to centre its synthetic vector)."""

    def __init__(self, paragraphs: list[dict]):
        self.by_text = {p["text"]: i for i, p in enumerate(paragraphs)}

    def __call__(self, text: str, starts: list[int], rng: np.random.Generator) -> list[int]:
        lines, offsets, pos = text.split("\n"), [], 0
        for line in lines:
            offsets.append(pos)
            pos += len(line) + 1
        out = []
        for s in starts:
            j = max(0, int(np.searchsorted(offsets, s, side="right")) - 1)
            k = self.by_text.get(_LEAD.sub("", lines[j], count=1))
            out.append(int(rng.integers(0, len(self.by_text))) if k is None else k)
        return out


class SyntheticVectors:
    """Unit vectors scattered around real ones along the real covariance (bench_vectors.synthetic, streamed)."""

    def __init__(self, real: np.ndarray, seed: int, cosine: float = 0.80):
        from bench_vectors import _normalize, covariance_root, noise_scale

        self.real, self.normalize = real, _normalize
        self.rng = np.random.default_rng(seed)
        self.root = covariance_root(real)
        self.s = noise_scale(real, self.root, np.random.default_rng(seed + 1), cosine)

    def around(self, centres: np.ndarray) -> np.ndarray:
        noise = self.rng.standard_normal((len(centres), self.real.shape[1]), np.float32) @ self.root
        return self.normalize(self.real[centres] + self.s * noise).astype(np.float32, copy=False)


def real_paragraph_vectors() -> np.ndarray:
    """Real embeddings of the pool's paragraphs (the first 2,581 rows of bench_vectors' cache)."""
    from bench_vectors import real_vectors

    docs, _ = real_vectors()
    return np.ascontiguousarray(docs[:len(pool_paragraphs())])


# -- stage timers (installed in the build process only; no file is changed) --------------------------------

class Stages:
    def __init__(self):
        self.s: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.peak_after: dict[str, float] = {}  # ru_maxrss (MB) after the stage's last call

    def add(self, name: str, seconds: float) -> None:
        self.s[name] = self.s.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def wrap(self, owner, attr: str, name: str) -> None:
        fn = getattr(owner, attr)
        stages = self

        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                stages.add(name, time.perf_counter() - t)
                stages.peak_after[name] = peak_rss_mb()

        setattr(owner, attr, timed)


def install_timers(stages: Stages) -> None:
    import bm25s
    import bm25s.tokenization
    import faiss

    from index import build, pipeline
    from index import vectors as vector_index
    from index import writer as writer_mod

    stages.wrap(build, "read_corpus", "read corpus")
    stages.wrap(pipeline, "split", "split (sentences, chunks)")
    stages.wrap(pipeline, "embed", "embed (model)")
    stages.wrap(writer_mod.GenerationWriter, "add", "writer.add")
    stages.wrap(bm25s.tokenization.Tokenizer, "tokenize", "  of which bm25 tokenize")
    stages.wrap(writer_mod.GenerationWriter, "finish", "writer.finish")
    stages.wrap(vector_index, "build", "  faiss build")
    stages.wrap(vector_index, "_ivf", "    of which ivf train")
    stages.wrap(faiss, "write_index", "  faiss write")
    stages.wrap(bm25s.BM25, "index", "  bm25 index")
    stages.wrap(bm25s.BM25, "save", "  bm25 save")
    stages.wrap(writer_mod, "file_sha256", "  checksums")


STAGE_ORDER = ("read corpus", "split (sentences, chunks)", "embed (model)", "synthetic vectors", "writer-only input",
               "writer.add", "  of which bm25 tokenize", "writer.finish", "  faiss build", "    of which ivf train",
               "  faiss write", "  bm25 index", "  bm25 save", "  checksums", "other")
TOP_STAGES = ("read corpus", "split (sentences, chunks)", "embed (model)", "synthetic vectors", "writer-only input",
              "writer.add", "writer.finish")


# -- child: build ---------------------------------------------------------------------------------------------

def child_build(spec: dict) -> dict:
    from index import build, embedder, pipeline, store

    stages = Stages()
    install_timers(stages)
    mode, index_dir = spec["mode"], Path(spec["index"])
    paragraphs = pool_paragraphs()
    out: dict = {"mode": mode, "load_before": os.getloadavg()[0]}
    last = {"t": time.perf_counter(), "done": 0}

    def progress(done: int, total: int, stage: str) -> None:
        now = time.perf_counter()
        if stage == "embedding" and total and (done == total or now - last["t"] > 30):
            log(f"  build: {done}/{total} releases processed")
            last["t"] = now
        elif stage != "embedding":
            log(f"  build: {stage}")

    t, c = time.perf_counter(), cpu_s()
    if mode == "writer":
        report = writer_only_build(spec, paragraphs, stages)
    else:
        processor = None
        if mode == "synthetic":
            processor = synthetic_processor(paragraphs, spec["seed"], stages)
        report = build.build_index(spec["corpus"], index_dir, full=True, progress=progress, processor=processor)
        report = {"releases": report.releases, "chunks": report.chunks, "files": report.files,
                  "skipped": len(report.skipped), "chunks_embedded": report.chunks_embedded}
    build_s = time.perf_counter() - t
    out.update(report, build_s=build_s, build_cpu_s=cpu_s() - c, build_rss_mb=peak_rss_mb(), rss_after_build=rss_now_mb(),
               load_after=os.getloadavg()[0])
    out["chunks_per_s"] = out["chunks"] / build_s
    named = sum(v for k, v in stages.s.items() if k in TOP_STAGES)
    out["stages_s"] = {k: round(v, 2) for k, v in stages.s.items()} | {"other": round(build_s - named, 2)}
    out["peak_rss_after_stage_mb"] = {k.strip(): round(v) for k, v in stages.peak_after.items()}
    log(f"  build: {out['chunks']} chunks, {out['releases']} releases in {build_s:.1f} s "
        f"({out['chunks_per_s']:.1f} chunks/s), peak RSS {out['build_rss_mb']:.0f} MB")

    # bare encode of the same chunk documents, same model, same process
    data = store.load(index_dir, verify=False)
    n = len(data.rows)
    rng = np.random.default_rng(spec["seed"])
    sample = data.rows["chunk_id"] if n <= spec["encode_sample"] else rng.choice(data.rows["chunk_id"],
                                                                                spec["encode_sample"], replace=False)
    texts = []
    for cid in sample:
        c = data.chunks[int(cid)]
        texts.append(pipeline.chunk_document(data.releases[c.release_id], c))
    if mode != "real":  # the model has not run in this process yet: one small batch first
        embedder.encode(texts[:32])
    # in calls of ~ one build batch of chunks (embedder.encode sorts each call by length, as the build's
    # batches are), stopping after --encode-max-s
    t, c, done, step = time.perf_counter(), cpu_s(), 0, 512
    while done < len(texts):
        embedder.encode(texts[done:done + step])
        done += len(texts[done:done + step])
        if time.perf_counter() - t > spec["encode_max_s"]:
            break
    enc_s, enc_cpu = time.perf_counter() - t, cpu_s() - c
    out.update(encode_chunks=done, encode_s=enc_s, encode_per_s=done / enc_s, encode_sampled=done < n,
               encode_cpu_s=enc_cpu)
    if mode == "real":
        out["cpu_ratio"] = (out["chunks"] / out["build_cpu_s"]) / (done / enc_cpu)
    texts = texts[:done]
    if mode == "real":
        out["ratio"] = out["chunks_per_s"] / out["encode_per_s"]
        out["ratio_kind"] = "measured"
    else:  # the same build with the model in place of the synthetic vectors
        made = stages.s.get("synthetic vectors", 0.0) + stages.s.get("writer-only input", 0.0)
        projected_s = build_s - made + out["chunks"] / out["encode_per_s"]
        out.update(projected_build_s=projected_s, projected_chunks_per_s=out["chunks"] / projected_s,
                   ratio=out["chunks"] / projected_s / out["encode_per_s"], ratio_kind="projected")
    log(f"  bare encode: {done} chunks in {enc_s:.1f} s ({out['encode_per_s']:.1f} chunks/s); "
        f"build/encode {out['ratio']:.2f} ({out['ratio_kind']})"
        + (f"; by CPU seconds {out['cpu_ratio']:.2f}" if "cpu_ratio" in out else ""))
    out["gpu"] = gpu_encode(texts)
    return out


def gpu_encode(texts: list[str]) -> dict:
    try:
        import torch

        if not torch.cuda.is_available():
            return {"available": False}
        from index import embedder

        model = embedder.load_model().to("cuda")
        model.encode(texts[:64], batch_size=64)
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        torch.cuda.synchronize()
        s = time.perf_counter() - t
        return {"available": True, "device": torch.cuda.get_device_name(0), "encode_per_s": len(texts) / s}
    except Exception as exc:  # the GPU figure is optional
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}


def synthetic_processor(paragraphs: list[dict], seed: int, stages: Stages, batch: int = None):
    """`pipeline.split` for real; vectors made around the real vector of each chunk's paragraph."""
    from index import config, pipeline

    batch = batch or config.BUILD_BATCH_RELEASES
    t = time.perf_counter()
    gen = SyntheticVectors(real_paragraph_vectors(), seed)
    which = ParagraphOf(paragraphs)
    rng = np.random.default_rng(seed + 2)
    stages.add("synthetic vectors", time.perf_counter() - t)

    def run(releases):
        for i in range(0, len(releases), batch):
            ps = pipeline.split(releases[i:i + batch])
            t = time.perf_counter()
            centres = [which(p.release.text, [c.start for c in p.chunks], rng) for p in ps]
            vecs = gen.around(np.asarray([k for cs in centres for k in cs], dtype=np.int64))
            row = 0
            for p in ps:
                p.vectors, row = vecs[row:row + len(p.chunks)], row + len(p.chunks)
            stages.add("synthetic vectors", time.perf_counter() - t)
            yield ps
    return run


def writer_only_build(spec: dict, paragraphs: list[dict], stages: Stages) -> dict:
    """Releases of one paragraph each straight into GenerationWriter (no corpus files, no per-release split)."""
    from index import embedder, pipeline, store
    from index import writer as writer_mod
    from index.chunker import count_tokens
    from index.config import CHUNK_SETTINGS
    from index.types import Annotation, Chunk, Release, release_hash, release_id_for

    t = time.perf_counter()
    base = pipeline.split([Release(f"p{i}", p["title"], p["text"], "pool") for i, p in enumerate(paragraphs)])
    per_para = [(p.annotation.sentences, p.chunks) for p in base]
    chunks_per_para = np.array([len(c) for _, c in per_para])
    log(f"  writer-only: {len(paragraphs)} distinct paragraphs split in {time.perf_counter() - t:.1f} s "
        f"({chunks_per_para.mean():.2f} chunks each)")
    t = time.perf_counter()
    gen = SyntheticVectors(real_paragraph_vectors(), spec["seed"])
    stages.add("synthetic vectors", time.perf_counter() - t)

    rng_py, rng = random.Random(spec["seed"]), np.random.default_rng(spec["seed"])
    n_target, next_id, i, block = spec["n_target"], 0, 0, 20_000
    t_last = time.perf_counter()
    with writer_mod.GenerationWriter(Path(spec["index"]), embedder.dimension(), None) as writer:
        while next_id < n_target:
            t = time.perf_counter()
            picks = rng.integers(0, len(paragraphs), block)
            counts = chunks_per_para[picks]
            keep = np.searchsorted(np.cumsum(counts), n_target - next_id) + 1  # stop once the target is reached
            picks, counts = picks[:keep], counts[:keep]
            t_vec = time.perf_counter()
            vecs = gen.around(np.repeat(picks, counts))
            t_vec = time.perf_counter() - t_vec
            stages.add("synthetic vectors", t_vec)
            items = []
            for k in picks:
                k = int(k)
                lead, iso = dateline(rng_py)
                title = f"{paragraphs[k]['title']}: update {i + 1} from {rng_py.choice(PLACES)}"
                text = lead + paragraphs[k]["text"]
                path = f"part-{i // (PER_FILE * FILES_PER_DIR):04d}/digest-{i // PER_FILE:06d}.txt"
                r = Release(release_id_for(path, title), title, text, path, SOURCE, iso,
                            release_hash(title, SOURCE, text, iso, ""))
                shift, sents, chunks = len(lead), *per_para[k]
                sentences = [(0 if j == 0 else s + shift, e + shift) for j, (s, e) in enumerate(sents)]
                lead_tokens = count_tokens(lead, CHUNK_SETTINGS)
                cs = []
                for j, c in enumerate(chunks):
                    s, e = (0 if j == 0 else c.start + shift), c.end + shift
                    cs.append(Chunk(next_id + j, r.release_id, s, e, text[s:e],
                                    c.n_tokens + (lead_tokens if j == 0 else 0)))
                next_id += len(cs)
                items.append((r, Annotation(sentences), cs))
                i += 1
            stages.add("writer-only input", time.perf_counter() - t - t_vec)
            row = 0
            for r, a, cs in items:
                writer.add(r, a, cs, vecs[row:row + len(cs)])
                row += len(cs)
            if time.perf_counter() - t_last > 60:
                log(f"  writer-only: {next_id}/{n_target} chunks added")
                t_last = time.perf_counter()
        log(f"  writer-only: {next_id} chunks added; finishing (FAISS, BM25, checksums)")
        settings = store.expected_settings()
        writer.finish(dict(settings, next_chunk_id=next_id, corpus_dir=str(Path(spec["index"]).parent / "corpus")))
    return {"releases": writer.n_releases, "chunks": writer.n_chunks, "files": 0, "skipped": 0,
            "chunks_embedded": 0}


# -- child: query ---------------------------------------------------------------------------------------------

def child_query(spec: dict) -> dict:
    from index import embedder, store
    from index import vectors as vector_index

    out: dict = {"load_before": os.getloadavg()[0]}
    t = time.perf_counter()
    from qa import Assistant
    from qa.training.eval import best_over, exact

    assistant = Assistant(spec["index"])
    out["assistant_load_s"] = time.perf_counter() - t
    asks = spec["ask"]
    for q, _ in asks[:3]:
        assistant.ask(q)
    out["warmup_s"] = time.perf_counter() - t - out["assistant_load_s"]
    times, cpu_ms, answered, right = [], [], 0, 0
    for q, golds in asks[3:]:
        t, c = time.perf_counter(), cpu_s()
        a = assistant.ask(q)
        times.append((time.perf_counter() - t) * 1000)
        cpu_ms.append((cpu_s() - c) * 1000)
        answered += bool(a.answered)
        right += bool(a.answered) and best_over(exact, a.text, golds) == 1.0
    out.update(ask_ms=times, ask_p50=float(np.percentile(times, 50)), ask_p95=float(np.percentile(times, 95)),
               ask_cpu_ms_p50=float(np.percentile(cpu_ms, 50)),
               asked=len(times), answered=answered, exact_match=right)
    log(f"  ask: p50 {out['ask_p50']:.0f} ms, p95 {out['ask_p95']:.0f} ms over {len(times)} questions "
        f"({answered} answered, {right} exact; CPU p50 {out['ask_cpu_ms_p50']:.0f} ms); "
        f"assistant loaded in {out['assistant_load_s']:.1f} s")

    import faiss

    faiss.omp_set_num_threads(1)
    data = store.load(spec["index"], verify=False)
    qv = embedder.encode(spec["recall"])
    rng = np.random.default_rng(spec["seed"])
    rows = rng.choice(len(data.rows), min(len(data.rows), len(spec["recall"])), replace=False)
    base = np.asarray(data.stored[np.sort(rows)], dtype=np.float32)
    noise = rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(base.shape[1])
    pert = base + 0.5 * noise
    pert /= np.linalg.norm(pert, axis=1, keepdims=True)
    found, times = {}, {}
    for name, qs in (("questions", qv), ("perturbed", pert)):
        times[name], found[name] = timed(data.vectors, qs, vector_index.VECTOR_INDEX, max_s=float("inf"))
    out.update(search_p50=float(np.percentile(times["questions"], 50)),
               search_p95=float(np.percentile(times["questions"], 95)),
               search_p50_perturbed=float(np.percentile(times["perturbed"], 50)),
               query_rss_mb=peak_rss_mb(), rss_after_queries=rss_now_mb())
    # exact top 10 over the stored vectors (after the RSS reading: this pages in every vector)
    t = time.perf_counter()
    exact = exact_top(data.stored, np.concatenate([qv, pert]), data.rows["chunk_id"])
    out["exact_s"] = time.perf_counter() - t
    out["recall_questions"] = vector_index.recall_at_k(found["questions"], exact[:len(qv)], K)
    out["recall_perturbed"] = vector_index.recall_at_k(found["perturbed"], exact[len(qv):], K)
    vi = data.manifest.get("vector_index", {})
    out["index_kind"] = vi.get("kind", "?") + (f" nlist={vi['nlist']}" if "nlist" in vi else "") + (
        " fp16" if vi.get("storage") == "float16" else "")
    out["disk_mb"] = folder_size(data.path) / 1e6
    out["files_mb"] = {k: round(v / 1e6, 1) for k, v in data.manifest.get("sizes", {}).items()
                       if not k.startswith("bm25/")}
    out["files_mb"]["bm25/"] = round(folder_size(data.path / "bm25") / 1e6, 1)
    out["load_after"] = os.getloadavg()[0]
    log(f"  search: p50 {out['search_p50']:.2f} ms, p95 {out['search_p95']:.2f} ms ({out['index_kind']}); "
        f"recall@10 {out['recall_questions']:.3f} (questions) {out['recall_perturbed']:.3f} (perturbed); "
        f"query peak RSS {out['query_rss_mb']:.0f} MB; index {out['disk_mb']:.0f} MB")
    return out


def exact_top(stored: np.ndarray, queries: np.ndarray, ids: np.ndarray, block: int = 65536) -> np.ndarray:
    """Exact top-K chunk ids by inner product, numpy matmul over blocks of the stored vectors."""
    best_s = np.full((len(queries), K), -np.inf, np.float32)
    best_i = np.full((len(queries), K), -1, np.int64)
    qt = np.ascontiguousarray(queries.T)
    for start in range(0, len(stored), block):
        s = np.asarray(stored[start:start + block], dtype=np.float32) @ qt  # rows x queries
        s = s.T
        kk = min(K, s.shape[1])
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, np.asarray(ids[start:start + block])[top]], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :K]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i


# -- child: pilot (chunks per release of the corpus maker) ----------------------------------------------------

def child_pilot(spec: dict) -> dict:
    from index import pipeline
    from index.types import Release

    paragraphs = pool_paragraphs()
    rel = [Release(f"r{i}", title, body, "pilot") for i, (title, body, _) in
           enumerate(make_releases(paragraphs, spec["n"], spec["seed"]))]
    ps = pipeline.split(rel)
    return {"chunks_per_release": sum(len(p.chunks) for p in ps) / len(ps)}


def run_child(kind: str, spec: dict, work: Path, timeout: float) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    spec_path, out_path = work / f"{kind}-spec.json", work / f"{kind}-out.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    try:
        done = subprocess.run([sys.executable, __file__, "--child", kind, str(spec_path), str(out_path)],
                              stdout=sys.stderr, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{kind} step killed after {timeout:.0f} s (--step-timeout)") from None
    if done.returncode or not out_path.is_file():
        err = (work / f"{kind}-error.txt")
        why = err.read_text().strip().splitlines()[-1] if err.is_file() else f"exit status {done.returncode}"
        raise RuntimeError(f"{kind} step failed: {why}")
    return json.loads(out_path.read_text())


def child_main(kind: str, spec_path: str, out_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        out = {"pilot": child_pilot, "build": child_build, "query": child_query}[kind](spec)
    except BaseException as exc:
        Path(out_path).with_name(f"{kind}-error.txt").write_text(
            traceback.format_exc() + f"\n{type(exc).__name__}: {exc}"[:500])
        traceback.print_exc()
        return 1
    Path(out_path).write_text(json.dumps(out))
    return 0


# -- the table --------------------------------------------------------------------------------------------------

def fmt_size(n: int) -> str:
    e = round(np.log10(n)) if n > 0 else 0
    return f"10^{e}" if 10 ** e == n else f"{n:,}"


def f(v, spec: str = ".0f", none: str = "–") -> str:
    return none if v is None else format(v, spec)


def table(rows: list[dict], gpu_note: str) -> str:
    head = ["size", "vectors", "chunks (releases)", "build s", "build chunks/s", "bare encode chunks/s",
            "build / encode", "GPU", "index type", "recall@10 q / pert.", "search p50 / p95 ms",
            "ask() p50 / p95 ms", "disk MB", "build peak RSS MB", "query peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        b, q = r.get("build") or {}, r.get("query") or {}
        vec = {"real": "real", "synthetic": "synthetic (split real)", "writer": "synthetic, writer only"}[r["mode"]]
        enc = f(b.get("encode_per_s"), ".1f")
        if b.get("encode_sampled"):
            enc += f" ({b['encode_chunks']:,} sampled)"
        ratio = f(b.get("ratio"), ".2f")
        if b.get("ratio_kind") == "projected":
            ratio += " projected" + (" (no reading, no per-release split)" if r["mode"] == "writer" else "")
        build_rate = f(b.get("chunks_per_s"), ".1f")
        if b and r["mode"] != "real":
            build_rate += f" (no model; {b['projected_chunks_per_s']:.1f} projected)"
        gpu = gpu_note if not b.get("gpu", {}).get("available") else f"encode {b['gpu']['encode_per_s']:.0f}/s"
        cells = [fmt_size(r["size"]), vec,
                 f"{b['chunks']:,} ({b['releases']:,})" if b else "–",
                 f(b.get("build_s"), ".1f"), build_rate, enc, ratio, gpu,
                 q.get("index_kind", "–"),
                 f"{f(q.get('recall_questions'), '.3f')} / {f(q.get('recall_perturbed'), '.3f')}" if q else "–",
                 f"{f(q.get('search_p50'), '.2f')} / {f(q.get('search_p95'), '.2f')}" if q else "–",
                 f"{f(q.get('ask_p50'))} / {f(q.get('ask_p95'))}" if q else "–",
                 f(q.get("disk_mb"), ".0f"), f(b.get("build_rss_mb"), ".0f"), f(q.get("query_rss_mb"), ".0f")]
        if r.get("error"):
            cells[-1] += f" — FAILED: {r['error']}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stage_line(st: dict) -> str:
    """'read corpus 0.1; ...; writer.add 3.0 (bm25 tokenize 2.0); writer.finish 9.0 (faiss build 5.0 [ivf ...]...)'."""
    def v(k):
        return f"{st[k]:.1f}"
    parts = [f"{k} {v(k)}" for k in ("read corpus", "split (sentences, chunks)", "embed (model)", "synthetic vectors",
                                     "writer-only input") if st.get(k, 0) >= 0.05]
    if "writer.add" in st:
        parts.append(f"writer.add {v('writer.add')} (bm25 tokenize {st.get('  of which bm25 tokenize', 0):.1f})")
    if "writer.finish" in st:
        sub = [f"{k.strip()} {v(k)}" for k in ("  faiss build", "  faiss write", "  bm25 index", "  bm25 save",
                                               "  checksums") if k in st]
        if st.get("    of which ivf train", 0) >= 0.05:
            sub[0] += f" [ivf train {st['    of which ivf train']:.1f}]"
        parts.append(f"writer.finish {v('writer.finish')} ({', '.join(sub)})")
    parts.append(f"other {st.get('other', 0):.1f}")
    return "; ".join(parts)


def notes(rows: list[dict], args, total_s: float) -> str:
    out = [f"Total run time {total_s / 60:.1f} min; 1-min load average before/after each step in --json "
           f"({os.cpu_count()} CPUs; other processes on the machine slow every figure)."]
    for r in rows:
        b = r.get("build") or {}
        if b.get("stages_s"):
            st = b["stages_s"]
            out.append(f"{fmt_size(r['size'])} build stages, s: {stage_line(st)}"
                       + (f" (build CPU {b['build_cpu_s']:.0f} s over {b['build_s']:.0f} s wall; build/encode by "
                          f"CPU seconds {b['cpu_ratio']:.2f})" if "cpu_ratio" in b else ""))
        q = r.get("query") or {}
        if q:
            out.append(f"{fmt_size(r['size'])} query: assistant load {q['assistant_load_s']:.1f} s; ask() CPU p50 "
                       f"{q['ask_cpu_ms_p50']:.0f} ms, {q['answered']}/{q['asked']} answered, {q['exact_match']} exact; "
                       f"files MB {q['files_mb']}")
        if r.get("skipped_why"):
            out.append(f"{fmt_size(r['size'])}: {r['skipped_why']}")
    out.append("vectors: real = all-MiniLM-L6-v2 in the build; synthetic = everything real but the model "
               "(vectors: a real paragraph vector + noise, median cosine 0.80); writer only = releases of one "
               "paragraph each, split once per distinct paragraph, fed straight to GenerationWriter (no corpus "
               "files, no per-release split). build/encode: build chunks/s over the model's bare encode rate on the "
               "same chunk documents in the same process (bare encode after the build: load that changes between the "
               "two biases it; the CPU-seconds ratio is the steadier figure); 'projected' = chunks/s of (build time "
               "- vector making + chunks / encode rate) over the encode rate. recall@10: FAISS search vs exact inner "
               f"product over the stored vectors, {args.recall_queries} question vectors / {args.recall_queries} "
               f"perturbed stored vectors. search: single queries, 1 thread. ask(): {args.questions} questions "
               "after 3 warm-ups. peak RSS: ru_maxrss of the build / query process (build: measured before "
               "the bare encode; query: before the exact search).")
    return "\n".join(out)


# -- main ---------------------------------------------------------------------------------------------------------

def parse_sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1e3,1e4,1e5,1e6"),
                        help="chunk counts, comma-separated (default 1e3,1e4,1e5,1e6)")
    parser.add_argument("--real-up-to", type=lambda s: int(float(s)), default=10**4,
                        help="sizes up to this are built with the real model (default 1e4)")
    parser.add_argument("--writer-only-from", type=lambda s: int(float(s)), default=10**6,
                        help="sizes from this on skip the corpus files and the per-release split (default 1e6)")
    parser.add_argument("--encode-sample", type=int, default=2000,
                        help="chunks encoded bare to measure the model's rate (all when fewer; default 2000)")
    parser.add_argument("--encode-max-s", type=float, default=150,
                        help="stop the bare encode after about this many seconds (default 150)")
    parser.add_argument("--questions", type=int, default=40, help="ask() questions, after 3 warm-ups (default 40)")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--step-timeout", type=float, default=1500, help="seconds a build or query step may take")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep corpora and indexes")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON object after the table")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(*args.child)

    started = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    paragraphs = pool_paragraphs()
    gpu_note = "n/a (no GPU this session)"  # the build processes say whether torch sees one
    rows: list[dict] = []
    try:
        ratio = None
        for size in args.sizes:
            mode = "real" if size <= args.real_up_to else ("writer" if size >= args.writer_only_from else "synthetic")
            row: dict = {"size": size, "mode": mode}
            rows.append(row)
            step = work / f"n{size}"
            t_size = time.perf_counter()
            log(f"== {fmt_size(size)} chunks, {mode} ==")
            try:
                spec = {"mode": mode, "index": str(step / "index"), "n_target": size, "seed": args.seed + size,
                        "encode_sample": args.encode_sample, "encode_max_s": args.encode_max_s}
                rng = random.Random(args.seed + size)
                if mode != "writer":
                    if ratio is None:
                        ratio = run_child("pilot", {"n": 400, "seed": args.seed - 1}, work / "pilot",
                                          args.step_timeout)["chunks_per_release"]
                        log(f"pilot: {ratio:.3f} chunks per release")
                    n_rel = max(1, round(size / ratio))
                    t = time.perf_counter()
                    used = write_corpus(step / "corpus", paragraphs, n_rel, args.seed + size)
                    row["corpus_mb"] = folder_size(step / "corpus") / 1e6
                    log(f"corpus: {n_rel} releases, {row['corpus_mb']:.1f} MB written in "
                        f"{time.perf_counter() - t:.1f} s")
                    spec["corpus"] = str(step / "corpus")
                else:
                    used = set(range(len(paragraphs)))
                row["build"] = run_child("build", spec, step, args.step_timeout)
                qas = [(q, golds) for k in sorted(used) for q, golds in paragraphs[k]["qas"]]
                ask = rng.sample(qas, min(len(qas), args.questions + 3))
                recall = [q for q, _ in rng.sample(qas, min(len(qas), args.recall_queries))]
                row["query"] = run_child("query", {"index": spec["index"], "ask": ask, "recall": recall,
                                                   "seed": args.seed + size}, step, args.step_timeout)
            except Exception as exc:
                row["error"] = str(exc)[:300]
                log(f"FAILED at {fmt_size(size)}: {exc}")
            finally:
                row["step_s"] = time.perf_counter() - t_size
                log(f"{fmt_size(size)} done in {row['step_s']:.0f} s")
                if not args.keep:
                    shutil.rmtree(step, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    print(table(rows, gpu_note))
    print()
    print(notes(rows, args, total))
    if args.json:
        def clean(v):
            if isinstance(v, float):
                return round(v, 4)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v] if len(v) <= 50 else f"{len(v)} values"
            return v
        print(json.dumps({"total_s": round(total, 1), "sizes": [clean(r) for r in rows]}, indent=1))
    return 0 if not any(r.get("error") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
