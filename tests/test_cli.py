"""`python -m qa` as a person runs it: on a real index of a small corpus written here, in a subprocess."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from index.build import build_index

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))

RUTTE = """NATO Allies select Mark Rutte as the next Secretary General

Source: NATO

Brussels, 26 June 2024. The North Atlantic Council today decided to appoint Mark Rutte as the next Secretary General of NATO.

Mark Rutte will succeed Jens Stoltenberg as Secretary General. He will take office on 1 October 2024.
"""
LIBRARY = """Riverside Public Library opens its Eastside branch

Source: City of Riverside

Riverside, 14 March 2024. The Riverside Public Library opened its new Eastside branch on Maple Street today. It holds 40,000 books.
"""
Q = "Who will succeed Jens Stoltenberg as Secretary General?"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)


@pytest.fixture
def built(tmp_path) -> tuple[Path, Path]:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "rutte.txt").write_text(RUTTE, encoding="utf-8")
    (corpus / "library.txt").write_text(LIBRARY, encoding="utf-8")
    build_index(corpus, index)
    return corpus, index


def test_cli_says_in_one_line_when_the_index_is_stale_and_how_to_rebuild(built):
    corpus, index = built
    fresh = run("-m", "qa", Q, "--index", str(index))
    assert fresh.returncode == 0 and "Answer:     Mark Rutte" in fresh.stdout, fresh.stderr
    assert "out of date" not in fresh.stderr

    (corpus / "library.txt").unlink()  # the index still holds it
    stale = run("-m", "qa", Q, "--index", str(index), "--json")
    assert stale.returncode == 0 and json.loads(stale.stdout)["text"] == "Mark Rutte"  # stdout stays JSON
    notes = [line for line in stale.stderr.splitlines() if "out of date" in line]
    assert len(notes) == 1, stale.stderr
    command = notes[0].split("rebuild it with: ", 1)[1]
    assert command == f"python -m index build --corpus {shlex.quote(str(corpus))} --index {shlex.quote(str(index))}"

    rebuilt = run(*shlex.split(command)[1:])  # the command as printed, with this interpreter
    assert rebuilt.returncode == 0, rebuilt.stderr
    again = run("-m", "qa", Q, "--index", str(index))
    assert again.returncode == 0 and "out of date" not in again.stderr


def test_cli_help_imports_no_model_code():
    """`--help` answers without importing torch, transformers or the embedding model's library."""
    out = run("-X", "importtime", "-m", "qa", "--help")
    assert out.returncode == 0 and "--since DAY" in out.stdout
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert imported and not imported & {"torch", "transformers", "sentence_transformers", "faiss", "spacy"}
