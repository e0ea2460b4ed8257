"""The FAISS vector index (index/vectors.py) with real faiss on a few thousand clustered vectors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from index import vectors
from index.config import VECTOR_INDEX

DIM = 384


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    """4,000 vectors around 80 centres (median cosine to the centre about 0.8), ids not 0..n-1, and queries."""
    rng = np.random.default_rng(3)
    centres = unit(rng.standard_normal((80, DIM)))
    base = unit(centres[rng.integers(0, 80, 4000)] + 0.038 * rng.standard_normal((4000, DIM)))
    queries = unit(centres[rng.integers(0, 80, 50)] + 0.05 * rng.standard_normal((50, DIM)))
    ids = np.arange(4000, dtype=np.int64) * 3 + 100
    return base, ids, queries


@pytest.fixture(scope="module")
def built(data):
    base, ids, _ = data
    return {kind: vectors.build(base, ids, kind) for kind in vectors.KINDS}


def exact(base, ids, queries, k=10, rows=None):
    rows = np.arange(len(base)) if rows is None else rows
    top = np.argsort(-(queries @ base[rows].T), axis=1)[:, :k]
    return ids[rows][top]


def test_kind_is_chosen_by_size_and_read_back(built):
    assert vectors.choose_kind(VECTOR_INDEX.flat_max) == "flat"
    assert vectors.choose_kind(VECTOR_INDEX.flat_max + 1) == VECTOR_INDEX.approximate
    for kind, index in built.items():
        assert vectors.kind_of(index) == kind
        assert vectors.describe(index)["kind"] == kind and vectors.describe(index)["ntotal"] == 4000
    assert vectors.describe(built["ivf"])["nlist"] == vectors.ivf_lists(4000) > 1
    assert [vectors.supports_remove(k) for k in vectors.KINDS] == [True, True, False]


def test_each_kind_returns_the_given_ids(data, built):
    base, ids, _ = data
    for kind, index in built.items():
        scores, found = vectors.search(index, base[:20], 5)
        assert found.shape == scores.shape == (20, 5)
        assert list(found[:, 0]) == list(ids[:20]), kind
        assert np.allclose(scores[:, 0], 1.0, atol=1e-3)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
@pytest.mark.parametrize("half", [False, True])
def test_recall_against_exact_search(data, kind, half):
    base, ids, queries = data
    settings = dataclasses.replace(VECTOR_INDEX, float16=half)
    index = vectors.build(base, ids, kind, settings=settings)
    assert vectors.describe(index, settings)["storage"] == ("float16" if half else "float32")
    _, found = vectors.search(index, queries, 10, settings=settings)
    assert vectors.recall_at_k(found, exact(base, ids, queries)) >= 0.95


def test_recall_at_k():
    assert vectors.recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 4, 1]]), k=3) == pytest.approx(2 / 3)
    assert vectors.recall_at_k(np.array([[1, -1]]), np.array([[1, -1]]), k=2) == 1.0


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_allowed_ids_restrict_the_search(data, built, kind):
    base, ids, queries = data
    index = built[kind]
    rng = np.random.default_rng(5)
    for size in (1500, 40, 12, 3):
        rows = np.sort(rng.choice(len(ids), size, replace=False))
        scores, found = vectors.search(index, queries, 10, allowed_ids=ids[rows])
        assert found.shape == (len(queries), min(10, size))
        assert np.isin(found, ids[rows]).all(), (kind, size)  # only allowed ids, and always k of them
        assert (np.diff(scores, axis=1) <= 1e-6).all()
        assert vectors.recall_at_k(found, exact(base, ids, queries, rows=rows)) >= 0.95, (kind, size)
    _, found = vectors.search(index, queries[:2], 10, allowed_ids=np.array([], dtype=np.int64))
    assert found.shape == (2, 0)


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_save_and_load_memory_mapped(tmp_path, data, built, kind):
    _, ids, queries = data
    path = tmp_path / f"{kind}.faiss"
    vectors.save(built[kind], path)
    for mmap in (True, False):
        loaded = vectors.load(path, mmap=mmap)
        assert vectors.kind_of(loaded) == kind and loaded.ntotal == 4000
        for allowed in (None, ids[::7]):
            want = vectors.search(built[kind], queries, 10, allowed_ids=allowed)
            got = vectors.search(loaded, queries, 10, allowed_ids=allowed)
            assert np.array_equal(got[1], want[1]) and np.allclose(got[0], want[0])


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_remove_and_add_in_place(tmp_path, data, kind):
    base, ids, _ = data
    vectors.save(vectors.build(base, ids, kind), tmp_path / "v.faiss")
    index = vectors.load(tmp_path / "v.faiss", mmap=False)  # to modify, never memory-mapped
    assert index.remove_ids(ids[:100]) == 100 and index.ntotal == 3900
    _, found = vectors.search(index, base[:100], 10)
    assert not np.isin(found, ids[:100]).any()
    index.add_with_ids(base[:10], ids[:10])
    _, found = vectors.search(index, base[:10], 1)
    assert list(found[:, 0]) == list(ids[:10])


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_empty_and_single_vector(tmp_path, data, kind):
    base, ids, queries = data
    empty = vectors.build(np.zeros((0, DIM), np.float32), np.zeros(0, np.int64), kind, dim=DIM)
    assert vectors.kind_of(empty) == kind and empty.ntotal == 0 and empty.d == DIM
    scores, found = vectors.search(empty, queries[:3], 10)
    assert found.shape == scores.shape == (3, 0)
    vectors.save(empty, tmp_path / "empty.faiss")
    assert vectors.load(tmp_path / "empty.faiss").ntotal == 0

    one = vectors.build(base[:1], ids[:1], kind)
    _, found = vectors.search(one, queries[:3], 10)
    assert found.tolist() == [[ids[0]]] * 3
    _, found = vectors.search(one, queries[:3], 10, allowed_ids=ids[1:2])  # an allowed id it does not hold
    assert found.tolist() == [[-1]] * 3
    if vectors.supports_remove(kind):  # an index built empty grows by adding
        empty.add_with_ids(base[:50], ids[:50])
        _, found = vectors.search(empty, base[:5], 1)
        assert list(found[:, 0]) == list(ids[:5])


def test_ivf_is_reproducible_and_suits_its_size(data):
    base, ids, queries = data
    a, b = vectors.build(base, ids, "ivf"), vectors.build(base, ids, "ivf")
    assert np.array_equal(vectors.search(a, queries, 10)[1], vectors.search(b, queries, 10)[1])
    assert vectors.suits(a, 4000, "ivf") and vectors.suits(a, 8000, "ivf")
    assert not vectors.suits(a, 40 * 4000, "ivf")  # grown far past what it was trained for: rebuild
    assert not vectors.suits(a, 4000)  # 4,000 vectors want the flat kind
    assert not vectors.suits(a, 4000, "ivf", dataclasses.replace(VECTOR_INDEX, float16=True))
    assert vectors.ivf_lists(10) == 1 and vectors.ivf_lists(10**6) > vectors.ivf_lists(10**5) > 1
