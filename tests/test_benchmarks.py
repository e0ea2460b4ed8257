"""The benchmark scripts still run end to end on the real components, at tiny sizes.

Their figures are printed for people to read (README); these tests only keep the scripts from rotting when the
code they time moves (a renamed module once broke `make bench-scale` without any test noticing).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the scale benchmarks make their releases from the shared SQuAD paragraphs
needs_shared = pytest.mark.skipif(not (ROOT.parent / "shared" / "data").is_dir(), reason="needs ../shared/data")


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@needs_shared
def test_bench_scale_runs_a_real_a_synthetic_and_a_writer_only_size():
    r = _run("scripts/bench_scale.py", "--sizes", "2e2,1e3,2e3", "--real-up-to", "2e2", "--writer-only-from", "2e3",
             "--questions", "1", "--encode-sample", "20", "--recall-queries", "10", "--json")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = json.loads(r.stdout[r.stdout.index('{\n "total_s"'):])["sizes"]
    assert [row.get("error") for row in rows] == [None, None, None]
    for row in rows:
        assert row["build"]["chunks"] > 0
        assert row["query"]["recall_questions"] > 0.9


@needs_shared
def test_bench_index_builds_and_rebuilds_one_changed_release():
    r = _run("scripts/bench_index.py", "--releases", "20", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["chunks"] > 0 and figures["one_changed_chunks_embedded"] >= 1


def test_benchmark_times_ask_on_the_bundled_corpus():
    r = _run("scripts/benchmark.py", "-n", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ask()            p50" in r.stdout
