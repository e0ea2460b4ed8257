"""Builds on Ray (`index.distributed`, `python -m index build --ray`): the same index as a single-process
build of the same corpus, and faults (an address where no Ray answers, a worker that dies) explained in one
sentence, with the previous index left as it was.

One local Ray with 2 CPUs serves the module (`ray_processor` uses a Ray this process is connected to, and
leaves it running); the CLI test starts its own, as `--ray` without an address does.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
# Ray Data's own deprecation notices about its settings, raised when it first reads its context.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

from index import embedder, generations, pipeline, store
from index.build import build_index
from index.distributed import CRASH_ENV, check_address, ray_processor
from index.errors import IndexStoreError
from index.releases import read_corpus

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "corpus" / "nato-releases-2024-06.txt"
QUERIES = ["Who is the NATO Secretary General?", "What did defence ministers agree on air defence?",
           "When is the Washington summit?"]
TOL = 1e-5


def _env() -> dict:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env.pop(CRASH_ENV, None)
    return env


@pytest.fixture(scope="module")
def local_ray():
    """A Ray with 2 CPUs for the whole module; yields its GCS address."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A copy of the bundled release file alone (nine releases, a few chunks each), not what a user added to corpus/."""
    folder = tmp_path_factory.mktemp("corpus")
    shutil.copy(BUNDLED, folder / BUNDLED.name)
    return folder


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory) -> Path:
    """The corpus built in this process, the reference for every Ray build."""
    index = tmp_path_factory.mktemp("single") / "index"
    report = build_index(corpus, index)
    assert report.written and report.chunks > len(read_corpus(corpus).releases)
    return index


def _copy(index: Path, to: Path) -> Path:
    shutil.copytree(index, to, symlinks=True)
    return to


def assert_same_index(a: Path, b: Path) -> None:
    """Same releases in the same order, same sentences, chunk ids and texts; vectors equal within TOL;
    the same top chunk for each query."""
    da, db = store.load(a), store.load(b)
    assert list(da.releases) == list(db.releases)
    for rid in da.releases:
        assert da.releases[rid] == db.releases[rid]
        assert da.annotations[rid].sentences == db.annotations[rid].sentences
        ca, cb = da.chunks.of_release(rid), db.chunks.of_release(rid)
        assert [(c.chunk_id, c.start, c.end, c.text) for c in ca] == [(c.chunk_id, c.start, c.end, c.text) for c in cb]
        np.testing.assert_allclose(db.vectors_of(rid), da.vectors_of(rid), atol=TOL)
    for q in QUERIES:
        v = embedder.encode_query(q)
        _, top_a = da.vectors.search(v, 3)
        _, top_b = db.vectors.search(v, 3)
        assert top_a[0][0] == top_b[0][0], q


def test_build_on_ray_answers_like_a_single_process_build(corpus, single, tmp_path, local_ray):
    releases = read_corpus(corpus).releases
    processor, asked, seen = ray_processor(workers=2, batch_size=2), [], []

    def watched(todo):
        asked.extend(todo)
        for batch in processor(todo):
            seen.extend(batch)
            yield batch

    index = tmp_path / "index"
    report = build_index(corpus, index, processor=watched)
    assert report.written and report.chunks_embedded == report.chunks
    assert_same_index(single, index)
    store.verify_index(index)  # checksums of the generation written from Ray's results

    # What came back from Ray, before the build numbered the chunks, is what the pipeline gives here.
    assert asked == releases  # a first build embeds everything, in corpus order
    assert [p.release for p in seen] == releases  # every release once, in corpus order
    assert all(p.release is r for p, r in zip(seen, asked))  # the driver's own Release objects
    for got, want in zip(seen, pipeline.process(releases)):
        assert got.annotation.sentences == want.annotation.sentences
        assert got.chunks == want.chunks  # ids 0.. within the release, same offsets and texts
        assert got.vectors.dtype == np.float32 and got.vectors.shape == want.vectors.shape
        np.testing.assert_allclose(got.vectors, want.vectors, atol=TOL)
    assert list(processor([])) == []  # nothing to embed: Ray is not even asked


def test_cli_builds_on_a_local_ray(corpus, single, tmp_path):
    """`--ray` without an address starts a Ray with --workers CPUs, and stops it."""
    index = tmp_path / "index"
    run = subprocess.run([sys.executable, "-m", "index", "build", "--corpus", str(corpus), "--index", str(index),
                          "--ray", "--workers", "2", "--json"],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["chunks"] == store.read_manifest(single)["chunks"] == report["chunks_embedded"]
    assert_same_index(single, index)


def test_cli_rejects_workers_without_ray(tmp_path):
    run = subprocess.run([sys.executable, "-m", "index", "build", "--index", str(tmp_path), "--workers", "2"],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--workers goes with --ray" in run.stderr


def test_unreachable_address_fails_fast_and_leaves_the_index(corpus, single, tmp_path):
    index = _copy(single, tmp_path / "index")
    before, gens = generations.current_generation(index), generations.generations(index)
    t0 = time.monotonic()
    with pytest.raises(IndexStoreError, match=r"^The Ray cluster at 127\.0\.0\.1:1 cannot be reached") as err:
        build_index(corpus, index, full=True, processor=ray_processor("127.0.0.1:1"))
    assert "\n" not in str(err.value) and time.monotonic() - t0 < 30
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "index", "build", "--corpus", str(corpus), "--index", str(index),
                          "--full", "--ray", "127.0.0.1:1"],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 30
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"error: {err.value}"]
    assert generations.current_generation(index) == before and generations.generations(index) == gens
    store.load(index)


def test_address_checks(local_ray, monkeypatch):
    check_address(local_ray)  # a live head answers the probe
    if os.environ.get("RAY_AUTH_MODE") == "token":  # Ray's default for a cluster ray.init starts
        monkeypatch.delenv("RAY_AUTH_MODE")  # a driver that would send no token: told at once, not after a minute
        with pytest.raises(IndexStoreError, match="asks for its authentication token; set RAY_AUTH_MODE=token"):
            check_address(local_ray)
        monkeypatch.undo()
    with pytest.raises(IndexStoreError, match="not understood"):
        check_address("http://localhost:6379")
    with pytest.raises(IndexStoreError, match="not understood"):
        check_address("localhost:70000")
    # A port that takes connections but never answers: reached, but no Ray there; no hang.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(IndexStoreError, match="cannot be reached .*nothing there answered"):
        check_address(f"127.0.0.1:{silent.getsockname()[1]}", timeout=2)
    assert time.monotonic() - t0 < 5
    silent.close()
    # A server that answers, but not as Ray does (an HTTP/1 server).
    web = socket.socket()
    web.bind(("127.0.0.1", 0))
    web.listen(4)

    def answer():
        conn, _ = web.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    with pytest.raises(IndexStoreError, match="but not a Ray cluster"):
        check_address(f"127.0.0.1:{web.getsockname()[1]}", timeout=5)
    web.close()


def test_without_ray_installed_the_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(IndexStoreError, match=r"pip install -e '\.\[scale\]'"):
        ray_processor()


def test_index_and_its_cli_do_not_import_ray():
    code = "import sys, index.distributed, index.__main__; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), check=True, timeout=60)


def test_worker_killed_mid_build_is_retried(corpus, single, tmp_path, monkeypatch, local_ray):
    flag = tmp_path / "crash"
    flag.write_text("once")  # the first worker to find it deletes it and dies before its batch
    monkeypatch.setenv(CRASH_ENV, str(flag))
    index = tmp_path / "index"
    report = build_index(corpus, index, processor=ray_processor(workers=2, batch_size=2))
    assert not flag.exists()  # a worker did die
    assert report.written
    assert_same_index(single, index)


def test_worker_that_keeps_dying_stops_the_build_in_one_sentence(corpus, single, tmp_path, monkeypatch, local_ray):
    index = _copy(single, tmp_path / "index")
    before, gens = generations.current_generation(index), generations.generations(index)
    flag = tmp_path / "crash"
    flag.write_text("always")  # every try dies
    monkeypatch.setenv(CRASH_ENV, str(flag))
    with pytest.raises(IndexStoreError, match="died while processing releases") as err:
        build_index(corpus, index, full=True, processor=ray_processor(workers=2, batch_size=2, retries=0))
    assert "\n" not in str(err.value) and "index left as it was" in str(err.value)
    assert generations.current_generation(index) == before and generations.generations(index) == gens
    store.load(index)
    monkeypatch.delenv(CRASH_ENV)
    # The next build starts clean: no lock held, nothing half-written in the way.
    report = build_index(corpus, index, lock_timeout=0)
    assert not report.written and generations.current_generation(index) == before
