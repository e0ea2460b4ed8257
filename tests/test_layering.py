"""The house rules: imports run one way, answering reaches the index only through its query API, and no
module or function grows past what a reader can hold."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: what answering (qa/ outside qa/training/) may not import: storage engines and the build
FORBIDDEN_IN_QA = ("faiss", "bm25s", "sqlite3", "index.build", "index.writer")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 600, 150


def _modules(package: str, skip: str | None = None) -> list[Path]:
    return [p for p in sorted((ROOT / package).rglob("*.py")) if skip is None or skip not in p.parts]


def _imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved), at any depth."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("path", _modules("qa", skip="training"), ids=lambda p: p.name)
def test_answering_reaches_the_index_only_through_its_query_api(path):
    bad = sorted(n for n in _imports(path) if any(_under(n, f) for f in FORBIDDEN_IN_QA))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("package,above", [("index", ("qa", "ui")), ("qa", ("ui",))])
def test_no_import_runs_back_up(package, above):
    bad = {str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if any(_under(n, a) for a in above))
           for p in _modules(package)}
    assert not {k: v for k, v in bad.items() if v}


@pytest.mark.parametrize("package", ["index", "qa"])
def test_rooms_a_reader_can_hold(package):
    long_modules, long_functions = [], []
    for path in _modules(package):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(str(path.relative_to(ROOT)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert not long_modules and not long_functions, (long_modules, long_functions)


def test_status_reads_no_release_file(tmp_path, monkeypatch):
    """A status refresh compares the files' sizes and times with the index's record; it converts nothing,
    and a file touched without a change is hashed, not read as releases."""
    import os

    import qa
    from index import converters, releases
    from index.build import build_index

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Harbour opens\n\nThe harbour opened on 3 May 2024 in Ghent.\n", encoding="utf-8")
    (corpus / "b.md").write_text("# Bridge closes\n\nThe bridge closed on 4 May 2024.\n", encoding="utf-8")
    build_index(corpus, index)
    assistant = qa.Assistant(index)

    def refuse(*args, **kwargs):
        raise AssertionError("a status refresh converted a release file")

    monkeypatch.setattr(converters, "convert_with_skips", refuse)
    monkeypatch.setattr(converters, "_releases", refuse)
    monkeypatch.setattr(releases, "read_corpus", refuse)
    assert assistant.status()["stale"] is False
    st = (corpus / "a.txt").stat()
    os.utime(corpus / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    assert assistant.status()["stale"] is False
    (corpus / "b.md").write_text("# Bridge closes\n\nThe bridge closed on 5 May 2024.\n", encoding="utf-8")
    assert assistant.status()["stale"] is True
    (corpus / "b.md").unlink()
    assert assistant.status()["stale"] is True
    (corpus / "notes.odt").write_bytes(b"not a release format")  # not read by a build: not staleness
    assert assistant.status()["releases"] == 2


def test_an_unreadable_file_is_reported_once_and_leaves_the_index_fresh(tmp_path):
    """A file that cannot be read is skipped with its reason, recorded by the build (nothing re-embedded), and
    status says up to date until the folder changes again; what was indexed stays."""
    import qa
    from index.build import build_index

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Harbour opens\n\nThe harbour opened on 3 May 2024 in Ghent.\n", encoding="utf-8")
    build_index(corpus, index)
    assistant = qa.Assistant(index)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF")
    assert assistant.status()["stale"] is True
    report = build_index(corpus, index)
    assert report.written and report.chunks_embedded == 0 and report.unchanged == 1
    assert [path for path, _ in report.skipped] == ["broken.pdf"]
    assert assistant.status()["stale"] is False and assistant.status()["releases"] == 1
    again = build_index(corpus, index)
    assert not again.written and [path for path, _ in again.skipped] == ["broken.pdf"]
    (corpus / "broken.pdf").unlink()
    assert assistant.status()["stale"] is True
