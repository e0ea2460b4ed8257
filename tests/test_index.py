"""Index stage without building: reading both corpus layouts, chunk bounds, bad inputs, uploads."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from index import config
from index.build import build_index
from index.errors import CorpusError
from index.ingest import add_files
from index.converters import convert_with_skips
from index.releases import read_corpus

NBSP = "\u00a0"

MULTI = (
    "Allies open a logistics hub in Gdańsk\n"
    "\n"
    "Source: NATO Press Office\n"
    f"On 12{NBSP}June{NBSP}2024 the Alliance opened a logistics hub that can store 5{NBSP}000 tonnes of fuel.\n"
    "The Secretary General said: \u201cThis hub makes our forces faster.\u201d\n"
    "\n"
    "Ministers agree on air defence\n"
    "\n"
    "Source: NATO Media Centre\n"
    "Defence ministers agreed on 13 June 2024 to buy more air defence systems.\n"
    "The plan\u2019s first phase costs \u20ac2 billion.\n"
)

SINGLE = (
    "# Exercise Steadfast Noon begins\n"
    "\n"
    f"The annual exercise began on Monday with 60{NBSP}aircraft from 13 Allies.\n"
    "It runs for two weeks and is \u2018routine\u2019, officials said.\n"
)


def parse_file(text: str, name: str, folder: Path):
    """The releases of a .txt/.md file holding `text`, and those skipped."""
    (folder / name).write_bytes(text.encode("utf-8"))
    return convert_with_skips(folder / name, name)


def test_multi_release_layout_keeps_exact_text(tmp_path):
    releases, skipped = parse_file(MULTI, "digest.txt", tmp_path)
    assert skipped == []
    assert [r.title for r in releases] == ["Allies open a logistics hub in Gdańsk", "Ministers agree on air defence"]
    assert [r.source for r in releases] == ["NATO Press Office", "NATO Media Centre"]
    first, second = releases
    assert first.text.startswith(f"On 12{NBSP}June{NBSP}2024") and first.text.endswith("\u201cThis hub makes our forces faster.\u201d")
    assert f"5{NBSP}000 tonnes" in first.text and first.text in MULTI
    assert second.text == ("Defence ministers agreed on 13 June 2024 to buy more air defence systems.\n"
                           "The plan\u2019s first phase costs \u20ac2 billion.")
    assert first.date == "2024-06-12" and second.date == "2024-06-13"
    assert first.release_id != second.release_id and first.sha256 != second.sha256


def test_single_release_layout_keeps_exact_text(tmp_path):
    (r,), skipped = parse_file(SINGLE, "noon.md", tmp_path)
    assert skipped == []
    assert r.title == "Exercise Steadfast Noon begins"
    assert r.text == SINGLE[SINGLE.index("The annual"):].rstrip("\n")
    assert f"60{NBSP}aircraft" in r.text and "\u2018routine\u2019" in r.text


def test_release_ids_are_stable_and_path_dependent(tmp_path):
    a, _ = parse_file(SINGLE, "noon.md", tmp_path)
    b, _ = parse_file(SINGLE, "noon.md", tmp_path)
    c, _ = parse_file(SINGLE, "other.md", tmp_path)
    assert a[0].release_id == b[0].release_id != c[0].release_id
    assert a[0].sha256 == c[0].sha256  # same content: a rename is recognised by its hash


def test_read_corpus_skips_bad_files_with_reasons(tmp_path):
    (tmp_path / "good.md").write_text(SINGLE, encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 opens\n\nA caf\xe9 opened.".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    (tmp_path / "title-only.txt").write_text("Just a title\n\n\n", encoding="utf-8")
    (tmp_path / "empty.md").write_text("", encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / ".hidden.txt").write_text(SINGLE, encoding="utf-8")
    read = read_corpus(tmp_path)
    assert [r.path for r in read.releases] == ["good.md"]
    reasons = dict(read.skipped)
    assert "UTF-8" in reasons["latin1.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "no body" in reasons["title-only.txt"]
    assert "empty" in reasons["empty.md"]
    assert "truncated or damaged PDF" in reasons["notes.pdf"]
    assert ".xlsx files are not read as releases" in reasons["sheet.xlsx"]  # named, not silently ignored
    assert ".hidden.txt" not in reasons
    assert read.files == 6  # the .xlsx and the hidden file are not release files


def test_missing_and_empty_corpus_raise_and_leave_index_alone(tmp_path):
    index = tmp_path / "index"
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="does not exist"):
        build_index(tmp_path / "nowhere", index)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="no readable releases"):
        build_index(empty, index)
    (empty / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CorpusError, match="bad.txt"):
        build_index(empty, index)
    assert not index.exists()


def test_chunks_stay_within_bounds_and_the_model_window():
    from index import embedder
    from index.annotate import annotate
    from index.chunker import chunk_release

    title = "A long release"
    sentences = [f"Sentence number {i} says that delegation {i} met partners in city {i} on defence matters."
                 for i in range(60)]
    run_on = " ".join(f"word{i}" for i in range(700))  # one 'sentence' far longer than a chunk
    text = " ".join(sentences) + "\n" + run_on + "\nLast line."
    (note,) = annotate([text])
    settings = config.CHUNK_SETTINGS
    chunks = chunk_release("rid", text, note.sentences, settings,
                           fits=lambda t: embedder.fits_window(f"{title}\n{t}"))
    assert len(chunks) >= 6
    for c in chunks:
        assert c.text == text[c.start:c.end]
        assert 0 < c.n_tokens <= settings.max_tokens
        assert embedder.fits_window(f"{title}\n{c.text}")
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())  # nothing is left out
    assert [c.chunk_id for c in chunks] == list(range(len(chunks)))


# ----- uploads --------------------------------------------------------------------------------------

EXISTING = "Summit ends\n\nLeaders ended the summit in Vilnius on 12 July 2023 with a joint declaration.\n"


@pytest.fixture
def corpus(tmp_path):
    c = tmp_path / "corpus"
    c.mkdir()
    (c / "summit.txt").write_text(EXISTING, encoding="utf-8")
    return c


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _upload(tmp_path: Path, name: str, data: bytes | str) -> Path:
    """A file as an upload widget leaves it: in a temporary folder, under a name of its own."""
    import uuid

    src = tmp_path / "uploads" / uuid.uuid4().hex
    src.mkdir(parents=True)
    path = src / "upload.bin"
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


GOOD = "Foreign ministers meet in Prague\n\nForeign ministers met in Prague on 31 May 2024 to prepare the summit.\n"


@pytest.mark.parametrize("name,data,reason", [
    ("latin1.txt", "Caf\xe9\n\nA caf\xe9 opened in Brussels.".encode("latin-1"), "not UTF-8"),
    ("binary.txt", b"PK\x03\x04\x00\x00 zip bytes", "not a text file"),
    ("report.xlsx", GOOD, "files can be added as releases"),
    ("report.pdf", GOOD, "not a PDF file"),
    ("report.docx", GOOD, "not a zip archive"),
    ("../escape.txt", GOOD, "outside the corpus"),
    ("sub/escape.txt", GOOD, "outside the corpus"),
    ("..\\escape.txt", GOOD, "outside the corpus"),
    ("..", GOOD, "outside the corpus"),
    (".hidden.txt", GOOD, "hidden"),
    ("", GOOD, "no name"),
    ("title-only.md", "Only a title\n\n", "no release with a body"),
    ("empty.txt", "", "no release with a body"),
    ("summit.txt", GOOD, "already in the corpus"),  # the name is taken
    ("again.txt", "SUMMIT ENDS again\n\n  leaders ENDED the summit in Vilnius\non 12 July 2023 with a joint "
                  "declaration.  \n", "same text"),  # same body, case and whitespace aside
])
def test_upload_refusals_change_nothing(tmp_path, corpus, name, data, reason):
    before = _snapshot(corpus)
    report = add_files([_upload(tmp_path, name, data)], corpus, names=[name])
    assert report.accepted == []
    assert len(report.refused) == 1 and reason in report.refused[0][1], report.refused
    assert report.refused[0][1].endswith(".")
    assert _snapshot(corpus) == before
    assert not any(p.name.startswith(".upload-") for p in corpus.iterdir())


def test_upload_over_the_size_limit_is_refused(tmp_path, corpus):
    before = _snapshot(corpus)
    big = tmp_path / "big.txt"
    body = ("Big release\n\n" + "All work and no play. " * 300_000).encode("utf-8")
    assert len(body) > config.MAX_UPLOAD_BYTES
    big.write_bytes(body)
    report = add_files([big], corpus)
    assert report.accepted == [] and "limit" in report.refused[0][1] and "5 MB" in report.refused[0][1]
    assert _snapshot(corpus) == before


def test_upload_accepts_good_files_and_refuses_duplicates_within_it(tmp_path, corpus):
    before = _snapshot(corpus)
    good = _upload(tmp_path, "prague.txt", GOOD)
    twin = _upload(tmp_path, "prague-copy.md", GOOD.replace("Prague on", "Prague  on").upper())
    second = _upload(tmp_path, "noon.md", SINGLE)
    same_name = _upload(tmp_path, "noon.md", MULTI)
    report = add_files([good, twin, second, same_name], corpus,
                       names=["prague.txt", "prague-copy.md", "noon.md", "noon.md"])
    assert report.accepted == ["prague.txt", "noon.md"]
    refused = dict(report.refused)
    assert "same text" in refused["prague-copy.md"] and "in this upload" in refused["prague-copy.md"]
    assert "both named noon.md" in refused["noon.md"]
    after = _snapshot(corpus)
    assert after == {**before, "prague.txt": GOOD.encode(), "noon.md": SINGLE.encode()}
    assert [r.path for r in read_corpus(corpus).releases] == ["noon.md", "prague.txt", "summit.txt"]
    # Uploading the same file again is now a duplicate.
    again = add_files([_upload(tmp_path, "prague2.txt", GOOD)], corpus, names=["prague2.txt"])
    assert again.accepted == [] and "already in the corpus" in again.refused[0][1]


def test_upload_into_a_missing_corpus_creates_it(tmp_path):
    corpus = tmp_path / "new-corpus"
    report = add_files([_upload(tmp_path, "prague.txt", GOOD)], corpus, names=["prague.txt"])
    assert report.accepted == ["prague.txt"] and (corpus / "prague.txt").read_text(encoding="utf-8") == GOOD


def test_upload_does_not_follow_a_symlinked_name(tmp_path, corpus):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret", encoding="utf-8")
    os.symlink(outside, corpus / "link.txt")
    report = add_files([_upload(tmp_path, "link.txt", GOOD)], corpus, names=["link.txt"])
    assert report.accepted == [] and outside.read_text(encoding="utf-8") == "secret"
