"""Index lifecycle on the real model and FAISS: incremental builds, crash safety, locking, corruption, watching.

Corpora are tiny and written to temporary folders; one base index is built per module and
copied for each test that changes it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index import bm25, generations, pipeline, store, writer
from index.build import build_index
from index.freshness import corpus_changed
from index.errors import BuildLockedError, IndexStoreError
from index.ingest import add_files

ROOT = Path(__file__).resolve().parent.parent

LOGISTICS = """Allies open a logistics hub in Gdańsk

On 12\u00a0June\u00a02024 NATO opened a logistics hub in Gdańsk, Poland, that can store 5\u00a0000 tonnes of fuel.
The hub will supply forces on the eastern flank and shortens delivery times from weeks to days.
\u201cThis hub makes our forces faster and our deterrence stronger,\u201d the Secretary General said.
It employs 120 civilian staff and is run by the NATO Support and Procurement Agency.
"""

AIR_DEFENCE = """# Ministers agree on integrated air defence

Defence ministers agreed in Brussels on 13 June 2024 to buy more Patriot and SAMP/T air defence systems.
The plan's first phase costs two billion euros and will be funded jointly by eight Allies.
Deliveries start in 2025, with training for crews held in Germany and the Netherlands.
"""

DIGEST = """Partnership talks with Japan

Source: NATO Press Office
NATO and Japan held military staff talks in Tokyo on 3 June 2024.
The NATO Cooperative Security Division hosted the talks, which covered maritime security and cyber defence.
The next round will take place in Brussels in 2025.

Locked Shields exercise tests cyber defenders

Source: NATO Cooperative Cyber Defence Centre of Excellence
More than 4 000 experts from 40 nations took part in Locked Shields, the world's largest live-fire cyber exercise.
The exercise was organised in Tallinn, Estonia, and ran from 23 to 26 April 2024.
Finland's team won the exercise, ahead of Estonia and Lithuania.
"""

_CITIES = ["Oslo", "Riga", "Rome", "Sofia", "Madrid", "Lisbon", "Prague", "Vilnius", "Tirana", "Zagreb"]
_TOPICS = ["ammunition production", "energy security", "space operations", "climate security",
           "military mobility", "naval patrols", "border surveillance", "medical evacuation"]


def _long_release() -> str:
    lines = ["Annual report on defence spending", ""]
    for i in range(36):
        city, topic = _CITIES[i % len(_CITIES)], _TOPICS[i % len(_TOPICS)]
        lines.append(f"In {2014 + i % 10} the delegation in {city} spent {3 + i} million euros on {topic}, "
                     f"an increase of {i % 7 + 1} percent over the year before.")
    return "\n".join(lines) + "\n"


SUMMIT = """Washington Summit declaration adopted

Leaders adopted the Washington Summit declaration on 10 July 2024 at the end of a three-day meeting.
They agreed to spend at least two percent of gross domestic product on defence every year.
"""

BASE = {"logistics.txt": LOGISTICS, "air-defence.md": AIR_DEFENCE, "digest.txt": DIGEST,
        "long-report.txt": _long_release()}

QUERIES = ["Where did NATO open a fuel hub?", "How much does the air defence plan cost?",
           "Who hosted the military staff talks with Japan?", "Which team won Locked Shields?",
           "How much was spent on naval patrols?", "What did leaders agree at the summit?"]


def write_corpus(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)  # keep `current` a link
    return dst


def rid_of(data: store.IndexData, path: str, title: str | None = None) -> str:
    (rid,) = [r.release_id for r in data.releases.values() if r.path == path and (title is None or r.title == title)]
    return rid


def gen_folders(index: Path) -> list[str]:
    return [g.name for g in generations.generations(index)]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A corpus of five releases (four files, both layouts) and its index, built once."""
    root = tmp_path_factory.mktemp("base")
    corpus = write_corpus(root / "corpus", BASE)
    index = root / "index"
    report = build_index(corpus, index)
    return corpus, index, report


@pytest.fixture
def work(base, tmp_path):
    """A private copy of the base corpus and index, built from that corpus (nothing embedded)."""
    corpus = shutil.copytree(base[0], tmp_path / "corpus")
    index = copy_index(base[1], tmp_path / "index")
    report = build_index(corpus, index)  # the corpus path moved: re-recorded, nothing embedded
    assert report.chunks_embedded == 0 and report.unchanged == 5
    return corpus, index


# ----- build, store round trip ------------------------------------------------------------------------

def test_first_build_and_round_trip(base):
    corpus, index, report = base
    assert (report.added, report.changed, report.removed, report.unchanged) == (5, 0, 0, 0)
    assert report.full and report.written and report.releases == 5 and report.files == 4
    data = store.load(index)
    assert report.chunks_embedded == report.chunks == len(data.chunks) == data.vectors.ntotal
    assert data.generation == report.generation == generations.current_generation(index).name
    assert [r.path for r in data.releases.values()] == ["air-defence.md", "digest.txt", "digest.txt",
                                                        "logistics.txt", "long-report.txt"]
    long_id = rid_of(data, "long-report.txt")
    assert len(data.chunks.of_release(long_id)) >= 3
    from index import config, embedder

    for rid, r in data.releases.items():
        assert r.text in (corpus / r.path).read_text(encoding="utf-8")
        note = data.annotations[rid]
        assert data.vectors_of(rid).shape == (len(data.chunks.of_release(rid)), embedder.dimension())
        assert all(r.text[s:e].strip() == r.text[s:e] for s, e in note.sentences)
        for c in data.chunks.of_release(rid):
            assert c.text == r.text[c.start:c.end]
            assert 0 < c.n_tokens <= config.CHUNK_SETTINGS.max_tokens
            assert embedder.fits_window(pipeline.chunk_document(r, c))
    # vectors are unit length and stored under the chunk ids
    ids = np.asarray(sorted(data.chunks), dtype=np.int64)
    vecs = data.vectors.reconstruct_batch(ids)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert sorted(data.bm25_ids) == sorted(data.chunks)
    q = embedder.encode_query("Which team won the cyber exercise?")
    _, found = data.vectors.search(q, 1)
    assert data.chunks[int(found[0][0])].release_id == rid_of(data, "digest.txt", "Locked Shields exercise tests cyber defenders")
    # the store records per-release hashes, the manifest every file's checksum and the FAISS index type
    manifest = store.read_manifest(index)
    assert list(store.release_hashes(index)) == list(data.releases)
    assert set(generations.FILES) <= set(manifest["files"])
    assert manifest["vector_index"]["kind"] == "flat"  # exact while the index is small
    assert not corpus_changed(corpus, index)


def test_unchanged_rebuild_writes_nothing(work):
    corpus, index = work
    before = generations.current_generation(index)
    mtimes = {p: p.stat().st_mtime_ns for p in before.rglob("*")}
    t = time.perf_counter()
    report = build_index(corpus, index)
    assert time.perf_counter() - t < 5
    assert (report.added, report.changed, report.removed, report.unchanged, report.chunks_embedded) == (0, 0, 0, 5, 0)
    assert not report.written and report.generation == before.name
    assert generations.current_generation(index) == before
    assert {p: p.stat().st_mtime_ns for p in before.rglob("*")} == mtimes


def test_full_rebuild_re_embeds_everything(work):
    corpus, index = work
    total = store.load(index).vectors.ntotal
    report = build_index(corpus, index, full=True)
    assert report.full and report.written and report.chunks_embedded == total
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, 5)
    assert store.load(index).vectors.ntotal == total


# ----- add, edit, delete, rename ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def evolved(base, tmp_path_factory):
    """The base corpus taken through a series of edits, one incremental build after each."""
    root = tmp_path_factory.mktemp("evolved")
    corpus = shutil.copytree(base[0], root / "corpus")
    index = copy_index(base[1], root / "index")
    build_index(corpus, index)
    steps = {}

    def step(name, change):
        before = store.load(index)
        change()
        report = build_index(corpus, index)
        steps[name] = (before, report, store.load(index), gen_folders(index))

    step("add", lambda: (corpus / "summit.txt").write_text(SUMMIT, encoding="utf-8"))
    step("edit body", lambda: (corpus / "air-defence.md").write_text(
        AIR_DEFENCE.replace("two billion euros", "2.4 billion euros"), encoding="utf-8"))
    step("edit one of two", lambda: (corpus / "digest.txt").write_text(
        DIGEST.replace("Finland's team won", "Finland's team of 80 experts won"), encoding="utf-8"))
    step("edit title", lambda: (corpus / "logistics.txt").write_text(
        LOGISTICS.replace("Allies open a logistics hub in Gdańsk", "NATO opens fuel hub in Gdańsk"), encoding="utf-8"))
    step("delete", lambda: (corpus / "summit.txt").unlink())
    step("rename", lambda: (corpus / "long-report.txt").rename(corpus / "spending-2024.txt"))
    step("move to folder", lambda: ((corpus / "2024").mkdir(), (corpus / "air-defence.md").rename(
        corpus / "2024" / "air-defence.md")))
    step("nothing", lambda: None)
    return corpus, index, steps


def _counts(report):
    return report.added, report.changed, report.removed, report.unchanged


def test_add_embeds_only_the_new_release(evolved):
    before, report, after, gens = evolved[2]["add"]
    rid = rid_of(after, "summit.txt")
    assert _counts(report) == (1, 0, 0, 5)
    assert report.chunks_embedded == len(after.chunks.of_release(rid)) >= 1
    assert after.vectors.ntotal == before.vectors.ntotal + report.chunks_embedded
    # the generation readers used until now stays for them; older ones go
    assert gens == [before.generation, after.generation]
    # every other release kept its chunk ids and vectors
    for old_id, c in before.chunks.items():
        assert after.chunks[old_id] == c
        assert np.array_equal(after.vectors.reconstruct(old_id), before.vectors.reconstruct(old_id))


@pytest.mark.parametrize("name,path,title", [
    ("edit body", "air-defence.md", None),
    ("edit one of two", "digest.txt", "Locked Shields exercise tests cyber defenders"),
    ("edit title", "logistics.txt", None),
])
def test_edit_re_embeds_only_that_release(evolved, name, path, title):
    before, report, after, gens = evolved[2][name]
    assert _counts(report) == (0, 1, 0, 5)
    rid = rid_of(after, path, title)
    assert report.chunks_embedded == len(after.chunks.of_release(rid))
    new_ids = set(after.chunks) - set(before.chunks)
    assert {after.chunks[i].release_id for i in new_ids} == {rid}
    assert after.vectors.ntotal == len(after.chunks)
    assert len(gens) <= 2  # the current generation and the one before it


def test_delete_removes_the_release_and_its_vectors(evolved):
    before, report, after, gens = evolved[2]["delete"]
    assert _counts(report) == (0, 0, 1, 5) and report.chunks_embedded == 0
    gone = rid_of(before, "summit.txt")
    assert gone not in after.releases and gone not in after.annotations
    gone_ids = [c.chunk_id for c in before.chunks.of_release(gone)]
    assert after.vectors.ntotal == before.vectors.ntotal - len(gone_ids)
    assert not set(gone_ids) & set(after.chunks)
    assert not set(gone_ids) & set(int(i) for i in after.bm25_ids)
    for i in gone_ids:
        with pytest.raises(RuntimeError):
            after.vectors.reconstruct(i)


@pytest.mark.parametrize("name,old_path,new_path", [
    ("rename", "long-report.txt", "spending-2024.txt"),
    ("move to folder", "air-defence.md", "2024/air-defence.md"),
])
def test_rename_reuses_vectors(evolved, name, old_path, new_path):
    before, report, after, gens = evolved[2][name]
    assert _counts(report) == (1, 0, 1, 4) and report.reused == 1 and report.chunks_embedded == 0
    old_id, new_id = rid_of(before, old_path), rid_of(after, new_path)
    assert old_id not in after.releases
    old_chunks, new_chunks = before.chunks.of_release(old_id), after.chunks.of_release(new_id)
    assert [(c.start, c.end, c.text) for c in old_chunks] == [(c.start, c.end, c.text) for c in new_chunks]
    for o, n in zip(old_chunks, new_chunks):
        assert np.array_equal(before.vectors.reconstruct(o.chunk_id), after.vectors.reconstruct(n.chunk_id))
    assert np.array_equal(before.vectors_of(old_id), after.vectors_of(new_id))
    assert after.vectors.ntotal == len(after.chunks) == len(before.chunks)


def test_nothing_changed_keeps_the_generation(evolved):
    before, report, after, gens = evolved[2]["nothing"]
    assert _counts(report) == (0, 0, 0, 5) and not report.written
    assert after.generation == before.generation


def _keyed(data: store.IndexData):
    """Chunks and vectors keyed by (path, title, start, end): independent of chunk ids."""
    out = {}
    for c in data.chunks.values():
        r = data.releases[c.release_id]
        out[(r.path, r.title, c.start, c.end)] = (c.text, data.vectors.reconstruct(c.chunk_id))
    return out


def _top(data: store.IndexData, query_vec: np.ndarray, k: int = 5):
    scores, ids = data.vectors.search(query_vec, k)
    keys = []
    for i in ids[0]:
        c = data.chunks[int(i)]
        r = data.releases[c.release_id]
        keys.append((r.path, c.start))
    return keys, scores[0]


def _bm25_scores(data: store.IndexData, query: str) -> dict:
    """Every chunk's BM25 score for `query`, keyed by (path, start): ties make a top-k order ambiguous."""
    docs, scores = data.bm25.retrieve(bm25.tokenize([query]), k=len(data.bm25_ids), show_progress=False)
    out = {}
    for d, score in zip(docs[0], scores[0]):
        c = data.chunks[data.bm25_ids[int(d)]]
        out[(data.releases[c.release_id].path, c.start)] = round(float(score), 4)
    return out


def test_incremental_equals_full(evolved, tmp_path):
    from index import embedder

    corpus, index, _ = evolved
    incremental = store.load(index)
    report = build_index(corpus, tmp_path / "full", full=True)
    full = store.load(tmp_path / "full")
    assert report.chunks_embedded == len(full.chunks)
    assert list(incremental.releases) == list(full.releases)
    assert [r.to_dict() for r in incremental.releases.values()] == [r.to_dict() for r in full.releases.values()]
    for rid in full.releases:
        assert incremental.annotations[rid] == full.annotations[rid]
        assert np.allclose(incremental.vectors_of(rid), full.vectors_of(rid), atol=1e-5)
    inc, ful = _keyed(incremental), _keyed(full)
    assert inc.keys() == ful.keys()
    for key in ful:
        assert inc[key][0] == ful[key][0]
        assert np.allclose(inc[key][1], ful[key][1], atol=1e-5), key
    for q in QUERIES:
        v = embedder.encode_query(q)
        (ki, si), (kf, sf) = _top(incremental, v), _top(full, v)
        assert ki == kf and np.allclose(si, sf, atol=1e-5), q
        bi, bf = _bm25_scores(incremental, q), _bm25_scores(full, q)
        assert bi == bf and max(bf.values()) > 0, q


# ----- uploads feed the build -------------------------------------------------------------------------

def test_accepted_upload_is_indexed(work, tmp_path):
    corpus, index = work
    src = tmp_path / "upload.bin"
    src.write_text(SUMMIT, encoding="utf-8")
    dup = tmp_path / "dup.bin"
    dup.write_text(LOGISTICS.upper(), encoding="utf-8")
    ingest = add_files([src, dup], corpus, names=["summit.md", "logistics-copy.txt"])
    assert ingest.accepted == ["summit.md"] and "same text" in dict(ingest.refused)["logistics-copy.txt"]
    assert corpus_changed(corpus, index)
    report = build_index(corpus, index)
    data = store.load(index)
    assert _counts(report) == (1, 0, 0, 5)
    assert report.chunks_embedded == len(data.chunks.of_release(rid_of(data, "summit.md")))


# ----- corruption ---------------------------------------------------------------------------------------

def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("name,damage", [
    ("vectors.faiss", _flip), ("vectors.faiss", _truncate), ("store.sqlite", _flip),
    ("store.sqlite", _truncate), ("vectors.f32", _truncate), ("rows.npy", Path.unlink),
    ("bm25/vocab.index.json", _truncate), ("manifest.json", _truncate),
])
def test_corrupt_files_are_detected_at_load(base, tmp_path, name, damage):
    index = copy_index(base[1], tmp_path / "index")
    damage(generations.current_generation(index) / name)
    with pytest.raises(IndexStoreError) as err:
        store.load(index)
    message = str(err.value)
    assert "python -m index build --full" in message
    assert name.split("/")[-1] in message or "manifest" in message or "unreadable" in message


@pytest.mark.parametrize("name", ["store.sqlite", "vectors.faiss", "vectors.f32"])
def test_truncation_is_caught_even_without_checksums(base, tmp_path, name):
    index = copy_index(base[1], tmp_path / "index")
    _truncate(generations.current_generation(index) / name)
    with pytest.raises(IndexStoreError, match="--full"):
        store.load(index, verify=False)


def test_build_repairs_a_corrupt_index(work):
    corpus, index = work
    _flip(generations.current_generation(index) / "vectors.faiss")
    report = build_index(corpus, index)
    assert report.full and report.written and "could not be reused" in report.note
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, 5)
    assert store.load(index).vectors.ntotal == report.chunks


def test_a_full_disk_says_so_and_leaves_the_index_as_it_was(work, monkeypatch):
    import errno

    corpus, index = work
    before, folders = store.load(index), gen_folders(index)
    (corpus / "summit.txt").write_text(SUMMIT, encoding="utf-8")
    real_add = writer.GenerationWriter.add

    def add(self, *args, **kwargs):
        if self.n_releases == 3:  # part of the new generation is written when the disk fills
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(writer.GenerationWriter, "add", add)
    with pytest.raises(IndexStoreError, match="disk .* is full.*previous index is unchanged"):
        build_index(corpus, index)
    assert gen_folders(index) == folders  # the half-written generation is gone
    assert store.load(index).generation == before.generation
    monkeypatch.setattr(writer.GenerationWriter, "add", real_add)
    report = build_index(corpus, index)  # the next build starts clean
    assert report.added == 1 and len(store.load(index).releases) == 6


def test_a_forced_vector_index_kind_is_recorded_and_rebuilt_from_the_manifest(work):
    corpus, index = work
    report = build_index(corpus, index, vector_kind="ivf")  # same corpus, another FAISS type: rebuilt
    assert report.written and report.chunks_embedded == 0
    data = store.load(index)
    assert data.manifest["vector_index"]["kind"] == "ivf"
    found = data.vectors.search(data.stored[:1].copy(), 1)[1][0][0]
    assert found == data.rows["chunk_id"][0]
    assert data.manifest["vector_index"]["forced"]
    assert not build_index(corpus, index).written  # later builds keep the type asked for
    assert build_index(corpus, index, vector_kind="auto").written  # by size again: flat
    assert store.load(index).manifest["vector_index"]["kind"] == "flat"
    gen = generations.current_generation(index)  # a manifest that disagrees with the FAISS file is refused
    manifest = json.loads((gen / "manifest.json").read_text())
    (gen / "manifest.json").write_text(json.dumps(dict(manifest, vector_index={"kind": "hnsw"})))
    with pytest.raises(IndexStoreError, match="FAISS index is 'flat', the manifest says 'hnsw'"):
        store.load(index, verify=False)


def test_an_ivf_index_is_updated_not_trained_again(work, monkeypatch):
    from index import vectors

    corpus, index = work
    build_index(corpus, index, vector_kind="ivf")
    before = store.load(index)
    (corpus / "summit.txt").write_text(SUMMIT, encoding="utf-8")
    (corpus / "logistics.txt").unlink()

    def no_training(*args, **kwargs):
        raise AssertionError("the IVF index was built again")

    monkeypatch.setattr(vectors, "build", no_training)
    report = build_index(corpus, index)
    assert (report.added, report.removed) == (1, 1) and report.chunks_embedded >= 1
    after = store.load(index)
    assert vectors.kind_of(after.vectors) == "ivf" and after.vectors.ntotal == len(after.chunks)
    ids = np.asarray(after.rows["chunk_id"])
    found = vectors.search(after.vectors, np.asarray(after.stored), 1)[1][:, 0]
    assert np.array_equal(found, ids)  # every chunk, new ones included, is found by its own vector
    gone = set(np.asarray(before.rows["chunk_id"]).tolist()) - set(ids.tolist())
    assert gone and not gone & set(vectors.search(after.vectors, np.asarray(before.stored), 5)[1].ravel().tolist())


def test_other_settings_are_refused(work, monkeypatch):
    corpus, index = work
    from index import config

    monkeypatch.setattr(config, "CHUNK_SETTINGS", config.ChunkSettings(max_tokens=120))
    with pytest.raises(IndexStoreError, match="other settings.*--full"):
        store.load(index)


def test_a_reader_follows_a_switch_during_its_load(work, monkeypatch):
    corpus, index = work
    old = store.load(index)
    real = store._load_generation
    calls = []

    def switching(index_dir, gen, verify, check_settings):
        calls.append(gen.name)
        if len(calls) == 1:  # two builds finish, pruning the generation this reader resolved
            (corpus / "long-report.txt").rename(corpus / "spending-2024.txt")
            build_index(corpus, index)
            (corpus / "logistics.txt").unlink()
            build_index(corpus, index)
            assert not gen.exists()
        return real(index_dir, gen, verify, check_settings)

    monkeypatch.setattr(store, "_load_generation", switching)
    data = store.load(index)
    assert calls[0] == old.generation and data.generation != old.generation and len(data.releases) == 4
    # a reader that loaded earlier still answers from memory after its generation is gone
    assert not old.path.exists() and old.vectors.search(np.ones((1, old.vectors.d), np.float32), 1)[1][0][0] >= 0


# ----- killed builds and concurrent builds --------------------------------------------------------------

KILL_POINTS = ["embedding", "save-files", "before-switch", "switch", "after-switch"]
EMBEDDING = ("embedding", "hold")  # builds that embed (and so load the model); the others only move vectors


def _cli(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "index", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the build ended before pausing: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the build never reached its pause point")
        time.sleep(0.05)


def _change_corpus(corpus: Path, point: str) -> None:
    if point in EMBEDDING:  # one release added, one edited
        (corpus / "summit.txt").write_text(SUMMIT, encoding="utf-8")
        (corpus / "air-defence.md").write_text(AIR_DEFENCE.replace("eight Allies", "nine Allies"), encoding="utf-8")
    else:  # one file deleted, one renamed: nothing to embed, so the build needs no model
        (corpus / "logistics.txt").unlink()
        (corpus / "long-report.txt").rename(corpus / "spending-2024.txt")


def _expected_after(point: str) -> tuple[int, int, int, int, int]:
    """(added, changed, removed, unchanged, releases) of a build that applies `_change_corpus`."""
    return (1, 1, 0, 4, 6) if point in EMBEDDING else (1, 0, 2, 3, 4)


@pytest.fixture(scope="module")
def paused_builds(base, tmp_path_factory):
    """One CLI build per pause point (plus one that will be let go), all started at once.

    Each works on its own copy of the base index and corpus, changed by `_change_corpus`.
    """
    root = tmp_path_factory.mktemp("paused")
    runs = {}
    for point in [*KILL_POINTS, "hold"]:
        corpus = shutil.copytree(base[0], root / point / "corpus")
        index = copy_index(base[1], root / point / "index")
        build_index(corpus, index)
        _change_corpus(corpus, point)
        flag = root / point / "paused"
        env = {generations.PAUSE_ENV: f"{'embedding' if point == 'hold' else point}:{flag}", "OMP_NUM_THREADS": "1"}
        before = store.load(index)
        proc = _cli("build", "--corpus", str(corpus), "--index", str(index), "--json", env=env)
        runs[point] = dict(corpus=corpus, index=index, flag=flag, proc=proc, before=before)
    try:
        for run in runs.values():
            _wait_for(run["flag"], run["proc"])
        yield runs
    finally:
        for run in runs.values():
            if run["proc"].poll() is None:
                run["proc"].kill()
                run["proc"].wait()


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_build_leaves_a_loadable_index_and_the_next_build_finishes(paused_builds, point):
    run = paused_builds[point]
    proc, index, before = run["proc"], run["index"], run["before"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    leftovers = gen_folders(index)
    data = store.load(index)
    added, changed, removed, unchanged, n_releases = _expected_after(point)
    if point == "after-switch":  # the switch happened: the new index is whole
        assert len(data.releases) == n_releases and data.generation != before.generation
    else:  # the previous index, whole and unchanged
        assert data.generation == before.generation and list(data.releases) == list(before.releases)
        assert data.vectors.ntotal == before.vectors.ntotal
        if point in ("save-files", "before-switch", "switch"):
            assert any(g > data.generation for g in leftovers)  # the orphan the kill left
        if point == "switch":
            assert list(index.glob(".current-*"))
    report = build_index(run["corpus"], index, lock_timeout=60)  # the dead build's lock is free
    after = store.load(index)
    if point == "after-switch":
        assert not report.written and after.generation == data.generation
    else:
        assert (report.added, report.changed, report.removed, report.unchanged) == (added, changed, removed, unchanged)
        touched = {rid_of(after, "summit.txt"), rid_of(after, "air-defence.md")} if point in EMBEDDING else set()
        assert report.chunks_embedded == sum(len(after.chunks.of_release(r)) for r in touched)
    assert len(after.releases) == n_releases and after.vectors.ntotal == len(after.chunks)
    assert not list(index.glob(".current-*"))
    assert all(g <= after.generation for g in gen_folders(index)) and len(gen_folders(index)) <= 2
    assert not corpus_changed(run["corpus"], index)


def test_concurrent_builds_wait_or_say_so(paused_builds):
    run = paused_builds["hold"]
    corpus, index, proc = run["corpus"], run["index"], run["proc"]
    # A second build that will not wait says so and changes nothing.
    busy = _cli("build", "--corpus", str(corpus), "--index", str(index), "--no-wait", "--json",
                env={"OMP_NUM_THREADS": "1"})
    out, err = busy.communicate(timeout=120)
    assert busy.returncode == 2 and out == "" and "Another build" in err and "running" in err
    with pytest.raises(BuildLockedError):
        build_index(corpus, index, lock_timeout=0)
    # One that waits starts after the first finishes, and sees the corpus as it is by then.
    (corpus / "late.txt").write_text("Late news\n\nA late release about fuel convoys in Latvia.\n", encoding="utf-8")
    waiter = _cli("build", "--corpus", str(corpus), "--index", str(index), "--json", env={"OMP_NUM_THREADS": "1"})
    time.sleep(2.0)
    assert waiter.poll() is None  # still waiting
    assert store.load(index).generation == run["before"].generation
    run["flag"].unlink()  # let the first build go on
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    first = json.loads(out)
    assert (first["added"], first["changed"], first["removed"], first["unchanged"]) == (1, 1, 0, 4)
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert "Another build of this index is running; waiting" in err
    second = json.loads(out)
    assert (second["added"], second["changed"], second["removed"], second["unchanged"]) == (1, 0, 0, 6)
    data = store.load(index)
    assert len(data.releases) == 7 and data.vectors.ntotal == len(data.chunks)
    assert second["chunks_embedded"] == len(data.chunks.of_release(rid_of(data, "late.txt")))


def test_a_waiting_build_reports_the_wait(work):
    corpus, index = work
    from index.build import WAITING_STAGE, lock_for

    stages = []
    with lock_for(index, -1):
        done = {}
        waiter = threading.Thread(target=lambda: done.update(
            report=build_index(corpus, index, lock_timeout=60, progress=lambda d, t, s: stages.append(s))))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive() and stages == [WAITING_STAGE]
    waiter.join(timeout=60)
    assert done["report"].unchanged == 5


# ----- the command line ------------------------------------------------------------------------------------

def test_cli_json_report(work):
    corpus, index = work
    proc = _cli("build", "--corpus", str(corpus), "--index", str(index), "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert {"added", "changed", "removed", "unchanged", "chunks_embedded", "seconds"} <= set(report)
    assert (report["added"], report["changed"], report["removed"], report["unchanged"]) == (0, 0, 0, 5)
    assert report["chunks_embedded"] == 0 and isinstance(report["seconds"], float)
    text = _cli("build", "--corpus", str(corpus), "--index", str(index))
    out, err = text.communicate(timeout=120)
    assert text.returncode == 0 and "5 unchanged" in out and "up to date" in out


def test_cli_device_and_vector_index_flags(work):
    import torch

    corpus, index = work
    before = generations.current_generation(index)
    bad = ["bogus"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in bad:  # one sentence, exit 2, the index as it was
        proc = _cli("build", "--corpus", str(corpus), "--index", str(index), "--full", "--device", device)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and out == "" and err.startswith("error: --device") and err.count("\n") == 1, err
        assert generations.current_generation(index) == before
    proc = _cli("build", "--corpus", str(corpus), "--index", str(index), "--device", "cpu", "--vector-index", "ivf",
                "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out)["written"] and store.read_manifest(index)["vector_index"]["kind"] == "ivf"


def test_cli_reports_bad_corpus(tmp_path):
    proc = _cli("build", "--corpus", str(tmp_path / "nowhere"), "--index", str(tmp_path / "index"), "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and out == "" and err.startswith("error: ") and "does not exist" in err
    assert not (tmp_path / "index").exists()


# ----- watching -----------------------------------------------------------------------------------------

def test_watch_rebuilds_after_a_burst_of_changes(work):
    from index.watch import watch_in_background

    corpus, index = work
    reports, errors, lines = [], [], []
    got = threading.Event()

    def on_build(report):
        reports.append(report)
        got.set()

    def wait_build(n):
        deadline = time.monotonic() + 90
        while len(reports) < n and time.monotonic() < deadline:
            got.wait(0.1)
            got.clear()
        assert len(reports) >= n, (reports, errors, lines)
        return reports[n - 1]

    thread, stop = watch_in_background(corpus, index, debounce=0.8, on_build=on_build,
                                       on_error=errors.append, log=lines.append)
    try:
        first = wait_build(1)
        assert not first.written and first.unchanged == 5  # started up to date
        time.sleep(0.5)  # the watcher is armed
        # A burst: two new files, one edited, a hidden draft the watcher ignores and a damaged PDF it reports.
        (corpus / "summit.txt").write_text(SUMMIT, encoding="utf-8")
        (corpus / "late.md").write_text("# Late news\n\nFuel convoys reached Latvia on Friday.\n", encoding="utf-8")
        (corpus / "air-defence.md").write_text(AIR_DEFENCE.replace("eight", "ten"), encoding="utf-8")
        (corpus / ".draft.txt").write_text(SUMMIT, encoding="utf-8")
        (corpus / "notes.pdf").write_bytes(b"%PDF-1.4")
        second = wait_build(2)
        assert _counts(second) == (2, 1, 0, 4), lines
        time.sleep(1.5)
        assert len(reports) == 2, lines  # one build for the whole burst
        (corpus / "bad.txt").write_bytes(b"\xff\xfe not utf-8")  # a skipped file does not stop the watcher
        third = wait_build(3)
        # the unreadable files are recorded (so the index is not stale for ever), and nothing is embedded
        assert [path for path, _ in third.skipped] == ["bad.txt", "notes.pdf"]
        assert third.written and third.chunks_embedded == 0 and _counts(third) == (0, 0, 0, 7)
        (corpus / "summit.txt").unlink()
        fourth = wait_build(4)
        assert _counts(fourth) == (0, 0, 1, 6)
        assert not errors and store.load(index).generation == fourth.generation
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert any("Index rebuilt" in line for line in lines)
