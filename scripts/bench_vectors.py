"""Benchmark the vector index kinds of index/vectors.py by corpus size, to set config.VECTOR_INDEX.

How the vectors are made (random Gaussian vectors have no cluster structure and flatter any exact scan):
- real vectors: the bundled all-MiniLM-L6-v2 (index.embedder) unit embeddings of the 2,754 paragraphs of
  ../shared/data/squad_train_pool.json and squad2_dev_subset.json plus the 729 sentences (5 words or more)
  of the dev paragraphs: 3,483 rows; and of 1,000 of their questions (a seeded sample). Encoded once
  (about 100 s on 2 cores) and cached in /tmp/bench_vectors/.
- base of n vectors: x = normalize(c + s * L z), with c a real vector drawn uniformly (seeded), z ~ N(0, I),
  L the square root of the real vectors' covariance (the noise follows the directions in which text
  embeddings vary instead of spreading over all 384 evenly), and s set so that the median cosine of x to
  its c is 0.80. The header line gives the median cosine of a base vector to its nearest neighbour
  (real paragraphs and sentences among themselves: 0.67).
- queries: 200 of the encoded questions, never in the base; single queries, one thread, as in the app.
- filtered searches: 50 queries allowed a seeded random 10% or 1% of the ids.

Each (size, kind) is built in this process, saved, then loaded and searched in a fresh process, once
memory-mapped and once read whole, so that its memory can be measured. Recall@10 is against exact
inner-product search over the same base (and the same allowed ids); a flat index is exact by definition.

HNSW is skipped above --hnsw-max-n (2 x 10^5): its build alone takes ~10 minutes at 10^6 on 2 cores.

    .venv/bin/python scripts/bench_vectors.py                      # 10^3 .. 10^6, about 11 minutes
    .venv/bin/python scripts/bench_vectors.py --sizes 100000 --kinds ivf --nprobe 8 16 32 64
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import vectors  # noqa: E402
from index.config import VECTOR_INDEX  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = Path(tempfile.gettempdir()) / "bench_vectors"
VARIANTS = {"flat": ("flat", False), "flat16": ("flat", True), "ivf": ("ivf", False), "ivf16": ("ivf", True),
            "hnsw": ("hnsw", False), "hnsw16": ("hnsw", True)}
K = 10


def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    """(3,483 paragraph and sentence vectors, 1,000 question vectors), encoded once and cached."""
    docs_path, questions_path = CACHE / "real_docs.npy", CACHE / "real_questions.npy"
    if docs_path.is_file() and questions_path.is_file():
        return np.load(docs_path), np.load(questions_path)
    from index import embedder

    train = json.loads((DATA / "squad_train_pool.json").read_text(encoding="utf-8"))["data"]
    dev = json.loads((DATA / "squad2_dev_subset.json").read_text(encoding="utf-8"))["data"]
    paragraphs = [p for article in train + dev for p in article["paragraphs"]]
    sentences = [s for article in dev for p in article["paragraphs"]
                 for s in re.split(r"(?<=[.!?])\s+", p["context"].strip()) if len(s.split()) >= 5]
    questions = [q["question"] for p in paragraphs for q in p["qas"]]
    pick = np.random.default_rng(0).choice(len(questions), 1000, replace=False)
    docs = embedder.encode([p["context"].strip() for p in paragraphs] + sentences)
    qvecs = embedder.encode([questions[i] for i in pick])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(docs_path, docs)
    np.save(questions_path, qvecs)
    return docs, qvecs


def _normalize(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def covariance_root(real: np.ndarray) -> np.ndarray:
    """A matrix R with z @ R ~ N(0, cov(real)) for z ~ N(0, I)."""
    eigval, eigvec = np.linalg.eigh(np.cov(real.T))
    return (eigvec * np.sqrt(np.clip(eigval, 0, None))).T.astype(np.float32)


def noise_scale(real: np.ndarray, root: np.ndarray, rng: np.random.Generator, cosine: float) -> float:
    """The noise scale s at which normalize(c + s * z @ root) has median cosine `cosine` to its real centre c:
    bisection on a sample (the cosine falls as s grows)."""
    c, z = real[rng.integers(0, len(real), 2000)], rng.standard_normal((2000, real.shape[1]), np.float32) @ root
    lo, hi = 0.0, 10.0
    for _ in range(40):
        s = (lo + hi) / 2
        cos = np.median(np.sum(_normalize(c + s * z) * c, axis=1))
        lo, hi = (s, hi) if cos > cosine else (lo, s)
    return s


def synthetic(real: np.ndarray, n: int, seed: int, cosine: float = 0.80) -> np.ndarray:
    """n unit vectors scattered around real ones along the real covariance (median cosine to centre `cosine`)."""
    rng = np.random.default_rng(seed)
    root = covariance_root(real)
    s = noise_scale(real, root, rng, cosine)
    out = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        noise = rng.standard_normal((m, real.shape[1]), np.float32) @ root
        out[start:start + m] = _normalize(real[rng.integers(0, len(real), m)] + s * noise)
    return out


def exact_top(base: np.ndarray, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k row numbers by inner product (over `rows` only, when given)."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base if rows is None else base[rows])
    _, found = index.search(queries, k)
    return found if rows is None else np.where(found >= 0, rows[np.maximum(found, 0)], -1)


def neighbour_cosine(base: np.ndarray, sample: int = 500) -> float:
    """Median cosine of a base vector to its nearest other base vector."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    sims, _ = index.search(base[:sample], 2)
    return float(np.median(sims[:, 1]))


def rss_mb() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon", "RssFile")):
                key, value = line.split(":")
                out[key.lower().replace("rss", "")] = int(value.split()[0]) / 1024
    return out


def timed(index, queries: np.ndarray, settings, allowed=None, max_s: float = 15.0) -> tuple[list[float], np.ndarray]:
    """Per-query milliseconds and found ids, single queries (stops early past `max_s`, 20 queries at least)."""
    times, found = [], np.full((len(queries), K), -1, np.int64)
    total = time.perf_counter()
    for i, q in enumerate(queries):
        t = time.perf_counter()
        _, ids = vectors.search(index, q[None], K, allowed_ids=allowed, settings=settings)
        times.append((time.perf_counter() - t) * 1000)
        found[i, :ids.shape[1]] = ids[0]
        if i >= 19 and time.perf_counter() - total > max_s:
            break
    return times, found[:len(times)]


def probe(args: argparse.Namespace) -> None:
    """Child process: load one index (memory-mapped or not), search, report time, memory and ids."""
    import faiss

    faiss.omp_set_num_threads(1)
    work = Path(args.probe)
    spec = json.loads((work / "probe.json").read_text())
    settings = dataclasses.replace(VECTOR_INDEX, **spec["settings"])
    before = rss_mb()
    t = time.perf_counter()
    index = vectors.load(work / "index.faiss", mmap=spec["mmap"])
    out: dict = {"load_s": time.perf_counter() - t, "rss_load": rss_mb(), "rss_before": before}
    queries = np.load(work / "queries.npy")
    timed(index, queries[:10], settings)  # warm up: first touches of the pages
    times, found = timed(index, queries, settings, max_s=spec["max_s"])
    np.save(work / f"found-{spec['tag']}.npy", found)
    out.update(times=times, rss_search=rss_mb())
    for name in spec.get("filters", []):
        allowed = np.load(work / f"allowed-{name}.npy")
        times, found = timed(index, queries[:50], settings, allowed=allowed, max_s=spec["max_s"])
        np.save(work / f"found-{spec['tag']}-{name}.npy", found)
        out[f"times_{name}"] = times
    for field, values in spec.get("sweep", {}).items():
        for value in values:
            swept = dataclasses.replace(settings, **{field: value})
            times, found = timed(index, queries, swept, max_s=spec["max_s"])
            np.save(work / f"found-{spec['tag']}-{field}-{value}.npy", found)
            out[f"times_{field}_{value}"] = times
    print(json.dumps(out))


def run_probe(work: Path, **spec) -> dict:
    (work / "probe.json").write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, __file__, "--probe", str(work)], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"probe failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(times, q)) if times else float("nan")


def bench_one(work: Path, base: np.ndarray, queries: np.ndarray, truth: dict, variant: str, settings,
              args: argparse.Namespace) -> list[dict]:
    """Rows of figures for one size and variant (one, plus one per swept parameter value)."""
    kind, half = VARIANTS[variant]
    settings = dataclasses.replace(settings, float16=half)
    ids = np.arange(len(base), dtype=np.int64)
    t = time.perf_counter()
    index = vectors.build(base, ids, kind, settings=settings)
    build_s = time.perf_counter() - t
    info = vectors.describe(index, settings)
    vectors.save(index, work / "index.faiss")
    del index
    size_mb = (work / "index.faiss").stat().st_size / 1e6
    sweep = {}
    if kind == "ivf" and args.nprobe:
        sweep = {"ivf_nprobe": args.nprobe}
    if kind == "hnsw" and args.ef_search:
        sweep = {"hnsw_ef_search": args.ef_search}
    changed = settings.to_dict()
    mapped = run_probe(work, mmap=True, tag="mmap", settings=changed, max_s=args.max_s, filters=list(truth["filters"]),
                       sweep=sweep)
    whole = run_probe(work, mmap=False, tag="ram", settings=changed, max_s=min(args.max_s, 5.0))
    found = np.load(work / "found-mmap.npy")
    row = {"n": len(base), "variant": variant, "nlist": info.get("nlist", ""), "build_s": build_s,
           "disk_mb": size_mb, "recall": vectors.recall_at_k(found, truth["all"][:len(found)], K),
           "p50": pct(mapped["times"], 50), "p95": pct(mapped["times"], 95), "queries": len(mapped["times"]),
           "p50_ram": pct(whole["times"], 50), "load_s_mmap": mapped["load_s"], "load_s_ram": whole["load_s"],
           "anon_mmap": mapped["rss_search"]["anon"] - mapped["rss_before"]["anon"],
           "file_mmap": mapped["rss_search"]["file"] - mapped["rss_before"]["file"],
           "anon_ram": whole["rss_search"]["anon"] - whole["rss_before"]["anon"]}
    for name, exact in truth["filters"].items():
        got = np.load(work / f"found-mmap-{name}.npy")
        row[f"p50_{name}"] = pct(mapped[f"times_{name}"], 50)
        row[f"recall_{name}"] = vectors.recall_at_k(got, exact[:len(got)], K)
    rows = [row]
    for field, values in sweep.items():
        for value in values:
            got = np.load(work / f"found-mmap-{field}-{value}.npy")
            times = mapped[f"times_{field}_{value}"]
            rows.append({"n": len(base), "variant": f"{variant} {field.split('_', 1)[1]}={value}",
                         "nlist": row["nlist"], "recall": vectors.recall_at_k(got, truth["all"][:len(got)], K),
                         "p50": pct(times, 50), "p95": pct(times, 95), "queries": len(times)})
    return rows


COLUMNS = [("n", "{:>9}"), ("variant", "{:<16}"), ("nlist", "{:>5}"), ("build_s", "{:>8.1f}"),
           ("disk_mb", "{:>8.1f}"), ("recall", "{:>6.3f}"), ("p50", "{:>7.2f}"), ("p95", "{:>7.2f}"),
           ("p50_ram", "{:>7.2f}"), ("p50_10pct", "{:>7.2f}"), ("recall_10pct", "{:>6.3f}"),
           ("p50_1pct", "{:>7.2f}"), ("recall_1pct", "{:>6.3f}"), ("anon_mmap", "{:>7.0f}"),
           ("file_mmap", "{:>7.0f}"), ("anon_ram", "{:>7.0f}")]
HEADERS = {"build_s": "build s", "disk_mb": "disk MB", "recall": "r@10", "p50": "p50 ms", "p95": "p95 ms",
           "p50_ram": "p50 ram", "p50_10pct": "p50 10%", "recall_10pct": "r 10%", "p50_1pct": "p50 1%",
           "recall_1pct": "r 1%", "anon_mmap": "anon mm", "file_mmap": "file mm", "anon_ram": "anon rd"}


def format_row(row: dict) -> str:
    cells = []
    for key, fmt in COLUMNS:
        width = int(re.search(r"(\d+)", fmt).group(1))
        value = row.get(key, "")
        cells.append(fmt.format(value) if value != "" else " " * width)
    return " ".join(cells)


def header() -> str:
    cells = []
    for key, fmt in COLUMNS:
        width = int(re.search(r"(\d+)", fmt).group(1))
        text = HEADERS.get(key, key)
        cells.append(text.ljust(width) if "<" in fmt else text.rjust(width))
    return " ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**3, 10**4, 10**5, 10**6])
    parser.add_argument("--kinds", nargs="+", choices=list(VARIANTS),
                        default=["flat", "flat16", "ivf", "ivf16", "hnsw"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw-max-n", type=int, default=200_000,
                        help="skip HNSW above this size (its build takes ~35 s per 10^5 vectors on 2 cores)")
    parser.add_argument("--nprobe", type=int, nargs="*", default=[], help="IVF nprobe values to sweep too")
    parser.add_argument("--ef-search", type=int, nargs="*", default=[], help="HNSW efSearch values to sweep too")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="change a VectorIndexSettings field, e.g. ivf_lists_per_sqrt=8")
    parser.add_argument("--max-s", type=float, default=15.0, help="seconds of searching per measurement, at most")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines instead of a table")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        probe(args)
        return 0

    import faiss

    changes = {}
    for item in args.set:
        field, _, value = item.partition("=")
        kind = type(getattr(VECTOR_INDEX, field))
        changes[field] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    settings = dataclasses.replace(VECTOR_INDEX, **changes)
    say = (lambda *_: None) if args.json else (lambda *a: print(*a, flush=True))
    real, questions = real_vectors()
    queries = np.ascontiguousarray(questions[:args.queries])
    say(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads to build, 1 to search; "
        f"{len(real)} real vectors, {len(queries)} question queries; settings {settings.to_dict()}")
    say(header())
    rng = np.random.default_rng(args.seed)
    for n in args.sizes:
        base = synthetic(real, n, args.seed + n)
        work = Path(tempfile.mkdtemp(prefix="bench-vectors-"))
        try:
            np.save(work / "queries.npy", queries)
            truth = {"all": exact_top(base, queries, K), "filters": {}}
            for name, share in (("10pct", 0.10), ("1pct", 0.01)):
                allowed = np.sort(rng.choice(n, max(1, round(n * share)), replace=False)).astype(np.int64)
                np.save(work / f"allowed-{name}.npy", allowed)
                truth["filters"][name] = exact_top(base, queries[:50], K, rows=allowed)
            say(f"-- n = {n}: median cosine to nearest neighbour {neighbour_cosine(base):.2f}, "
                f"kind chosen by size: {vectors.choose_kind(n, settings)}, IVF lists {vectors.ivf_lists(n, settings)}")
            for variant in args.kinds:
                if VARIANTS[variant][0] == "hnsw" and n > args.hnsw_max_n:
                    say(f"{n:>9} {variant:<16} skipped (--hnsw-max-n {args.hnsw_max_n})")
                    continue
                for row in bench_one(work, base, queries, truth, variant, settings, args):
                    if args.json:
                        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
                              flush=True)
                    else:
                        say(format_row(row))
        finally:
            for p in work.iterdir():
                p.unlink()
            work.rmdir()
    say("r@10: recall@10 vs exact; p50/p95: ms per single query, memory-mapped; p50 ram: read whole; "
        "10%/1%: filtered to that share of ids; anon/file mm: MB of private / file-backed memory "
        "after loading memory-mapped and searching; anon rd: MB after reading it whole")
    return 0


if __name__ == "__main__":
    sys.exit(main())
