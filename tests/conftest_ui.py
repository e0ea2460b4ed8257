"""Shared pieces of the UI tests: a small corpus written by the tests, its real index,
and a real `python -m ui` server on a free port.

Imported by tests/test_ui_*.py (`from conftest_ui import ...`); tests/conftest.py is not used.
"""
from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

#: Several releases in one file: title line, blank line, `Source: ...` line, body paragraphs.
NEWS_FILE = """\
NATO Allies select Mark Rutte as the next Secretary General

Source: NATO press office

Brussels, 26 June 2024. The North Atlantic Council today decided to appoint the Prime Minister of the Netherlands, Mark Rutte, as the next Secretary General of NATO.

Mark Rutte will succeed Jens Stoltenberg as Secretary General. He will take office on 1 October 2024, when the term of Mr Stoltenberg expires.

Allies thanked Jens Stoltenberg for his leadership over the past ten years.

Northwind Robotics raises $40 million to expand warehouse automation

Source: Northwind Robotics

Austin, Texas, 4 March 2024. Northwind Robotics today announced that it has raised $40 million in Series B funding led by Harbor Ventures.

The company will use the money to open a second factory in Monterrey and to hire 120 engineers by the end of the year. Chief executive Dana Whitfield said the robots already sort parcels for six retailers.
"""

#: One release per file.
LIBRARY_FILE = """\
Riverside Public Library opens its Eastside branch

Source: City of Riverside

Riverside, 14 March 2024. The Riverside Public Library opened its new Eastside branch on Maple Street today.

The branch was designed by the architect Lena Ortiz and holds 40,000 books. It is open every day from 9 am to 8 pm.
"""

#: A release whose title and body hold markup that must be shown as text.
MARKUP_FILE = """\
Acme <b>Widgets</b> unveils the <script>alert('title')</script> Gizmo

Source: Acme Widgets

Springfield, 2 May 2024. Acme Widgets today unveiled the Gizmo 3000, a pocket-sized <i>weather station</i> <script>alert('body')</script> that costs 79 dollars.

The Gizmo 3000 goes on sale on 1 June 2024 <img src=x onerror="alert('img')"> in twelve countries.
"""


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "news.txt").write_text(NEWS_FILE, encoding="utf-8")
    (folder / "library.md").write_text(LIBRARY_FILE, encoding="utf-8")
    (folder / "acme.txt").write_text(MARKUP_FILE, encoding="utf-8")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `python -m ui` process; `url` once it printed its local URL, `output` what it printed."""

    def __init__(self, index_dir: Path, port: int | None = None, extra: list[str] | None = None,
                 env: dict | None = None):
        self.port = port or free_port()
        self.cmd = [PYTHON, "-m", "ui", "--port", str(self.port), "--index", str(index_dir), *(extra or [])]
        self.env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.lines: list[str] = []
        self.url: str | None = None
        self.started_at = 0.0
        self.ready_after = 0.0
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 240.0) -> "Server":
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        found: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            for line in self.proc.stdout:
                self.lines.append(line)
                m = re.search(r"Running on local URL:\s*(\S+)", line)
                if m:
                    found.put(m.group(1))

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.url = found.get(timeout=0.5)
                break
            except queue.Empty:
                if self.proc.poll() is not None:
                    time.sleep(0.2)
                    raise RuntimeError(f"python -m ui exited with {self.proc.returncode}:\n{self.output}")
        else:
            self.stop()
            raise RuntimeError(f"python -m ui printed no URL in {timeout:.0f} s:\n{self.output}")
        self.ready_after = time.perf_counter() - self.started_at
        return self

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60.0) -> bool:
        """Whether the server prints `text` within `timeout` s (background threads print after the URL)."""
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline:
            time.sleep(0.2)
        return text in self.output

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def ui_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("ui_corpus"))


@pytest.fixture(scope="module")
def ui_index(ui_corpus, tmp_path_factory) -> Path:
    from index.build import build_index

    index_dir = tmp_path_factory.mktemp("ui_index")
    build_index(corpus_dir=ui_corpus, index_dir=index_dir)
    return index_dir


@pytest.fixture(scope="module")
def ui_server(ui_index) -> Server:
    server = Server(ui_index).start()
    yield server
    server.stop()
