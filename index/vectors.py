"""The FAISS index over the unit chunk vectors: exact while small, approximate past a measured size.

Kinds (inner product, search returns chunk ids):

    flat   IndexIDMap2(IndexFlatIP)          exact; removes and adds in place
    ivf    IndexIVFFlat, ids in its lists    k-means on a seeded sample; removes and adds in place
    hnsw   IndexIDMap(IndexHNSWFlat)         graph; cannot remove, so a build rebuilds it instead

`config.VECTOR_INDEX` holds the threshold and the parameters (measured by scripts/bench_vectors.py);
`describe` gives what the manifest records. With `float16` the vectors are stored as half floats.
An index loaded with `mmap=True` is read-only: search it, never add to it or remove from it.
"""
from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from .config import VECTOR_INDEX, VectorIndexSettings

KINDS = ("flat", "ivf", "hnsw")


def choose_kind(n_vectors: int, settings: VectorIndexSettings = VECTOR_INDEX) -> str:
    """The kind for n vectors: flat up to `settings.flat_max`, `settings.approximate` above."""
    return "flat" if n_vectors <= settings.flat_max else settings.approximate


def ivf_lists(n_vectors: int, settings: VectorIndexSettings = VECTOR_INDEX) -> int:
    """IVF lists for n vectors: a power of two near `ivf_lists_per_sqrt` x sqrt(n), each list well filled."""
    if n_vectors < 2 * settings.ivf_min_per_list:
        return 1
    nlist = 2 ** round(math.log2(settings.ivf_lists_per_sqrt * math.sqrt(n_vectors)))
    while nlist > 1 and nlist * settings.ivf_min_per_list > n_vectors:
        nlist //= 2
    return nlist


def supports_remove(kind: str) -> bool:
    """Whether an index of this kind can drop ids in place (HNSW cannot: rebuild it from the vectors)."""
    return kind in ("flat", "ivf")


def _check(vectors: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if vectors.ndim != 2 or ids.shape != (len(vectors),):
        raise ValueError(f"expected n x d vectors and n ids, got {vectors.shape} and {ids.shape}")
    return vectors, ids


def _fp16() -> int:
    return faiss.ScalarQuantizer.QT_fp16


def build(vectors: np.ndarray, ids: np.ndarray, kind: str | None = None, dim: int | None = None,
          settings: VectorIndexSettings = VECTOR_INDEX) -> faiss.Index:
    """An index of `kind` (default: chosen by size) over unit float32 rows, searched by inner product.

    `dim` is needed only when there are no rows whose width tells it.
    """
    d = dim if dim is not None else (vectors.shape[1] if np.ndim(vectors) == 2 else 0)
    vectors, ids = _check(np.reshape(vectors, (-1, d)), ids)
    kind = kind or choose_kind(len(vectors), settings)
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        inner = faiss.IndexScalarQuantizer(d, _fp16(), ip) if settings.float16 else faiss.IndexFlatIP(d)
        index = faiss.IndexIDMap2(inner)
    elif kind == "hnsw":
        if settings.float16:
            inner = faiss.IndexHNSWSQ(d, _fp16(), settings.hnsw_m, ip)
        else:
            inner = faiss.IndexHNSWFlat(d, settings.hnsw_m, ip)
        inner.hnsw.efConstruction = settings.hnsw_ef_construction
        inner.hnsw.efSearch = settings.hnsw_ef_search
        index = faiss.IndexIDMap(inner)
    elif kind == "ivf":
        index = _ivf(vectors, d, settings)
    else:
        raise ValueError(f"unknown vector index kind {kind!r}; expected one of {KINDS}")
    if len(vectors):
        index.add_with_ids(vectors, ids)
    return index


def _ivf(vectors: np.ndarray, d: int, settings: VectorIndexSettings) -> faiss.IndexIVF:
    """An empty, trained IVF index; k-means runs on a seeded sample (one list and no k-means when tiny)."""
    n = len(vectors)
    nlist = ivf_lists(n, settings)
    quantizer = faiss.IndexFlatIP(d)
    if settings.float16:
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, _fp16(), faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = settings.seed
    index.cp.niter = settings.ivf_train_iterations
    index.cp.max_points_per_centroid = max(settings.ivf_train_per_list, 1)
    if nlist == 1:
        quantizer.add(np.zeros((1, d), dtype=np.float32))  # one list holds everything: nothing to learn
        index.is_trained = True
        return index
    rng = np.random.default_rng(settings.seed)
    m = min(n, nlist * settings.ivf_train_per_list)
    sample = vectors if m == n else vectors[np.sort(rng.choice(n, m, replace=False))]
    index.train(sample)
    return index


def _parts(index: faiss.Index) -> tuple[faiss.Index, faiss.Index]:
    """(outer index, the index it wraps or itself), both downcast to their classes."""
    outer = faiss.downcast_index(index)
    inner = faiss.downcast_index(outer.index) if isinstance(outer, faiss.IndexIDMap) else outer
    return outer, inner


def kind_of(index: faiss.Index) -> str:
    """The kind of a built or loaded index."""
    _, inner = _parts(index)
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, (faiss.IndexFlat, faiss.IndexScalarQuantizer)):
        return "flat"
    raise ValueError(f"not a vector index of this project: {type(inner).__name__}")


def describe(index: faiss.Index, settings: VectorIndexSettings = VECTOR_INDEX) -> dict:
    """What the manifest records: kind, storage, size, IVF lists, and the settings it searches with."""
    _, inner = _parts(index)
    sq = isinstance(inner, (faiss.IndexScalarQuantizer, faiss.IndexIVFScalarQuantizer, faiss.IndexHNSWSQ))
    out = {"kind": kind_of(index), "storage": "float16" if sq else "float32", "ntotal": int(index.ntotal)}
    if isinstance(inner, faiss.IndexIVF):
        out["nlist"] = int(inner.nlist)
    return out | {"settings": settings.to_dict()}


def suits(index: faiss.Index, n_vectors: int, kind: str | None = None,
          settings: VectorIndexSettings = VECTOR_INDEX) -> bool:
    """Whether `index` may be kept (added to, removed from) for n vectors, or should be rebuilt.

    It must be of the kind wanted (`kind`, else the one chosen by size) with the storage of `settings`
    and, for IVF, a number of lists within a factor of two of the one for n (n within about 4x of the
    size it was trained for).
    """
    have = describe(index, settings)
    if (have["kind"], have["storage"]) != (kind or choose_kind(n_vectors, settings),
                                           "float16" if settings.float16 else "float32"):
        return False
    if have["kind"] == "ivf":
        want = ivf_lists(n_vectors, settings)
        return want // 2 <= have["nlist"] <= want * 2
    return True


def save(index: faiss.Index, path: str | Path) -> None:
    """Write the index to one file."""
    faiss.write_index(index, str(path))


def load(path: str | Path, mmap: bool = True) -> faiss.Index:
    """Read an index; with `mmap`, its vectors (and IVF lists, HNSW graph) stay in the file's pages.

    A memory-mapped index is read-only, and faiss crashes (it does not raise) on a write to one:
    load with `mmap=False` to add or remove ids.
    """
    flags = getattr(faiss, "IO_FLAG_MMAP_IFC", 0) if mmap else 0  # an older faiss without it: read whole
    return faiss.read_index(str(path), flags)


class _Allowed:
    """An ID selector over the allowed ids (a bitmap when they are small numbers), and how many there are."""

    BITMAP_MAX_ID = 1 << 27  # a bitmap of up to 16 MB; larger ids go to a hash set

    def __init__(self, allowed_ids: np.ndarray):
        ids = np.asarray(allowed_ids, dtype=np.int64).ravel()
        ids = ids[ids >= 0]
        if len(ids) and ids.max() < self.BITMAP_MAX_ID:
            bits = np.zeros(int(ids.max()) + 1, dtype=bool)
            bits[ids] = True
            self.count = int(np.count_nonzero(bits))
            self._bitmap = np.packbits(bits, bitorder="little")  # the selector only points at it: keep it
            self.selector = faiss.IDSelectorBitmap(len(self._bitmap), faiss.swig_ptr(self._bitmap))
        else:
            ids = np.unique(ids)
            self.count = len(ids)
            self.selector = faiss.IDSelectorBatch(ids)


def search(index: faiss.Index, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None,
           settings: VectorIndexSettings = VECTOR_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the best k per query, of shape (queries, min(k, candidates)); -1 where none.

    `allowed_ids` restricts the search to those ids. An approximate index then looks further, as far
    as it would unfiltered among that many vectors (IVF: nprobe / share lists; HNSW: efSearch / share,
    or an exact scan when the share is small), and rows left short of k are searched exactly.
    """
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n = index.ntotal
    allowed = None if allowed_ids is None else _Allowed(allowed_ids)
    k = max(0, min(k, n if allowed is None else allowed.count))
    if k == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    outer, inner = _parts(index)
    sel = {} if allowed is None else {"sel": allowed.selector}
    share = 1.0 if allowed is None else min(1.0, allowed.count / n)
    if isinstance(inner, faiss.IndexIVF):
        nprobe = min(inner.nlist, math.ceil(settings.ivf_nprobe / share))
        scores, ids = index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe, **sel))
        short = (ids < 0).any(axis=1)  # the lists probed held fewer than k allowed ids
        if short.any() and nprobe < inner.nlist:
            params = faiss.SearchParametersIVF(nprobe=inner.nlist, **sel)
            scores[short], ids[short] = index.search(queries[short], k, params=params)
        return scores, ids
    if isinstance(inner, faiss.IndexHNSW):
        if share < settings.hnsw_exact_share:
            return _exact_hnsw(outer, inner, queries, k, sel.get("sel"))
        ef = max(k, math.ceil(settings.hnsw_ef_search / share))
        scores, ids = index.search(queries, k, params=faiss.SearchParametersHNSW(efSearch=ef, **sel))
        short = (ids < 0).any(axis=1)
        if short.any():
            scores[short], ids[short] = _exact_hnsw(outer, inner, queries[short], k, sel.get("sel"))
        return scores, ids
    return index.search(queries, k, params=faiss.SearchParameters(**sel) if sel else None)


def _exact_hnsw(outer: faiss.IndexIDMap, inner: faiss.IndexHNSW, queries: np.ndarray, k: int,
                sel: faiss.IDSelector | None) -> tuple[np.ndarray, np.ndarray]:
    """Exact search over the vectors the HNSW graph links (the allowed ones only, with `sel`)."""
    storage = faiss.downcast_index(inner.storage)
    params = None if sel is None else faiss.SearchParameters(sel=faiss.IDSelectorTranslated(outer.id_map, sel))
    scores, rows = storage.search(queries, k, params=params)
    id_map = faiss.rev_swig_ptr(outer.id_map.data(), outer.id_map.size())
    return scores, np.where(rows >= 0, id_map[np.maximum(rows, 0)], -1)


def recall_at_k(found_ids: np.ndarray, exact_ids: np.ndarray, k: int = 10) -> float:
    """Mean share of each query's exact top k (ids >= 0) that the search found in its top k."""
    shares = []
    for found, exact in zip(np.atleast_2d(found_ids), np.atleast_2d(exact_ids)):
        want = {int(i) for i in exact[:k] if i >= 0}
        if want:
            shares.append(len(want & {int(i) for i in found[:k]}) / len(want))
    return float(np.mean(shares)) if shares else 1.0
