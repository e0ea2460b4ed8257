"""Filter by source: `source=` on Assistant.ask / qa.answer, `python -m qa --source`, and the web UI's picker,
on a real index of a corpus written here with releases from two press offices (and one naming none)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import qa
from index.build import build_index

ROOT = Path(__file__).resolve().parent.parent
HARBOR, NORTHWIND = "Harbor City Press Office", "Northwind Robotics"

PORT_FILE = """\
Harbor City opens its new ferry terminal

Source: Harbor City Press Office

Harbor City, 3 May 2024. The harbour authority of Harbor City opened its new ferry terminal on the east quay today.

Mayor Lisa Grant cut the ribbon at the new ferry terminal. The terminal cost 80 million euros and will serve 2 million passengers a year.

Northwind Robotics opens its new factory in Monterrey

Source: Northwind Robotics

Monterrey, 5 May 2024. Northwind Robotics opened its new factory in Monterrey today.

Chief executive Dana Whitfield cut the ribbon at the new factory. The factory will build 5,000 warehouse robots a year.
"""

#: the same press office, spelt in capitals with extra spaces: one source
SUMMER_FILE = """\
Harbor City starts its summer water-bus service

Source:   HARBOR  CITY   press office

Harbor City, 10 June 2024. Harbor City started its summer water-bus service today.

The water buses run every 15 minutes between the ferry terminal and the old town until 30 September.
"""

#: one release a file, naming no source
MUSEUM_FILE = """\
Science museum launches a robotics exhibition

The science museum in Leuven launched an exhibition on robotics on 12 April 2024. The exhibition shows 40 robots built by students.
"""

RIBBON = "Who cut the ribbon at the new ferry terminal?"


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "offices.txt").write_text(PORT_FILE, encoding="utf-8")
    (folder / "summer.txt").write_text(SUMMER_FILE, encoding="utf-8")
    (folder / "museum.md").write_text(MUSEUM_FILE, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    corpus = write_corpus(root / "corpus")
    report = build_index(corpus, root / "index")
    assert report.releases == 4
    return root / "index", qa.Assistant(root / "index")


def _source_of(assistant, release_id: str) -> str:
    return assistant.release(release_id).source


def test_sources_available_lists_each_source_once_with_its_releases(built):
    _, a = built
    # the two spellings of the press office are one source, shown as most of its releases spell it;
    # the museum's release names no source and is not listed
    assert a.sources_available() == [(HARBOR, 2), (NORTHWIND, 1)]


def test_unfiltered_the_best_answer_is_the_harbors(built):
    _, a = built
    r = a.ask(RIBBON)
    assert r.answered and "Lisa Grant" in r.text, r
    assert _source_of(a, r.release_id) == HARBOR


def test_filtering_to_another_source_searches_only_its_releases(built):
    _, a = built
    r = a.ask(RIBBON, source=NORTHWIND)
    assert r.sources and {_source_of(a, s.release_id) for s in r.sources} == {NORTHWIND}
    assert "Lisa Grant" not in r.text and "Lisa Grant" not in r.evidence
    assert _source_of(a, r.release_id) == NORTHWIND
    if r.answered:
        assert r.text == "Dana Whitfield"


@pytest.mark.parametrize("source", ["  harbor city PRESS   office ", [HARBOR], (HARBOR.lower(),)])
def test_source_names_match_in_any_case_and_spacing(built, source):
    _, a = built
    r = a.ask("How often do the water buses run?", source=source)
    assert r.answered and "15" in r.text and "every 15 minutes" in r.evidence
    assert {" ".join(_source_of(a, s.release_id).split()).casefold() for s in r.sources} == {HARBOR.casefold()}


def test_several_sources_and_no_source(built):
    _, a = built
    both = a.ask(RIBBON, source=[NORTHWIND, HARBOR])
    assert both.answered and "Lisa Grant" in both.text
    for empty in (None, "", "  ", []):
        r = a.ask("How many robots does the exhibition show?", source=empty)
        assert r.answered and r.text == "40"  # the museum's release (no source) is searched with no filter
    # a release naming no source is outside every source filter
    r = a.ask("How many robots does the exhibition show?", source=NORTHWIND)
    assert all(_source_of(a, s.release_id) == NORTHWIND for s in r.sources)


def test_source_and_date_range_combine(built):
    _, a = built
    r = a.ask("What did Harbor City open or start?", since="2024-06-01", source=HARBOR)
    assert r.sources and {s.date for s in r.sources} == {"2024-06-10"}
    r = a.ask("What did Harbor City open or start?", until="2024-05-31", source="harbor city press office")
    assert r.sources and {s.date for s in r.sources} == {"2024-05-03"}
    with pytest.raises(qa.InvalidQuestion) as exc:
        a.ask(RIBBON, since="2024-06-01", source=NORTHWIND)
    msg = str(exc.value)
    assert msg == ("No release from Northwind Robotics is dated from 2024-06-01 on; "
                   "its releases are dated 2024-05-05 to 2024-05-05."), msg


@pytest.mark.parametrize("source, fragment", [
    ("Acme Widgets", "No release has the source 'Acme Widgets'"),
    ([NORTHWIND, "Acme", "Globex"], "No release has any of the sources 'Acme' or 'Globex'"),
])
def test_unknown_source_is_one_sentence_naming_the_sources(built, source, fragment):
    _, a = built
    with pytest.raises(qa.InvalidQuestion) as exc:
        a.ask(RIBBON, source=source)
    msg = str(exc.value)
    assert msg.startswith(fragment) and msg.endswith(f"the index's sources are {HARBOR} and {NORTHWIND}."), msg
    assert msg.count(". ") == 0 and "\n" not in msg


def test_a_source_that_is_not_text_is_refused(built):
    _, a = built
    with pytest.raises(qa.InvalidQuestion, match="must be a source's name or a list of names"):
        a.ask(RIBBON, source=42)


def test_source_masks_are_computed_once_per_generation(built):
    _, a = built
    index = a._current().data
    f, unknown = index.source_filter([HARBOR])
    assert not unknown and index.rows_from(f) is index.rows_from(index.source_filter([HARBOR.upper()])[0])
    mask = index.rows_from(f)
    assert mask.dtype == bool and len(mask) == len(index.chunk_ids) and 0 < mask.sum() < len(mask)


def test_qa_answer_takes_source(built, monkeypatch):
    index_dir, _ = built
    monkeypatch.setattr(qa, "_default", qa.Assistant(index_dir))
    r = qa.answer(RIBBON, None, None, None, NORTHWIND)
    assert all(qa.default_assistant().release(s.release_id).source == NORTHWIND for s in r.sources)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=180)


def test_cli_source_is_repeatable(built):
    index_dir, _ = built
    out = _cli(RIBBON, "--index", str(index_dir), "--source", NORTHWIND, "--json")
    assert out.returncode == 0, out.stderr
    import json

    d = json.loads(out.stdout)
    assert d["sources"] and "Lisa Grant" not in d["text"]
    assert all(s["title"].startswith("Northwind") for s in d["sources"])
    both = _cli(RIBBON, "--index", str(index_dir), "--source", "northwind robotics", "--source", HARBOR)
    assert both.returncode == 0 and "Lisa Grant" in both.stdout.split("Sentence:")[0], both.stdout + both.stderr
    bad = _cli(RIBBON, "--index", str(index_dir), "--source", "Globex")
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: No release has the source 'Globex'; the index's sources are"), bad.stderr


def test_the_ui_source_picker_offers_the_index_sources(built, tmp_path):
    import gradio as gr

    from ui.app import build_app
    from ui.handlers import source_choices

    index_dir, a = built
    assert source_choices(a) == [(f"{HARBOR} (2 releases)", HARBOR), (f"{NORTHWIND} (1 release)", NORTHWIND)]
    demo = build_app(a, examples=[])
    pick = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "source-pick")
    assert isinstance(pick, gr.Dropdown) and pick.multiselect and pick.value == []  # empty: every source
    assert [tuple(c) for c in pick.choices] == source_choices(a)
    box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "source-filter")
    assert isinstance(box, gr.Accordion) and box.open is False  # folded away by default


def test_the_ui_source_picker_is_refreshed_after_a_rebuild(tmp_path):
    import gradio as gr

    from ui.app import build_app
    from ui.handlers import source_choices

    corpus = write_corpus(tmp_path / "corpus")
    build_index(corpus, tmp_path / "index")
    a = qa.Assistant(tmp_path / "index")
    demo = build_app(a, examples=[])
    refresh = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "refresh_sources")
    seen = source_choices(a)
    assert refresh([NORTHWIND], seen) == (gr.skip(), gr.skip())  # unchanged: the picker is left as it is
    (corpus / "globex.txt").write_text("Globex ships its first drone\n\nSource: Globex Corporation\n\n"
                                       "Springfield, 1 July 2024. Globex shipped its first delivery drone today.\n",
                                       encoding="utf-8")
    build_index(corpus, tmp_path / "index")
    update, choices = refresh([NORTHWIND, "Gone Office"], seen)
    assert [name for _, name in choices] == ["Globex Corporation", HARBOR, NORTHWIND]
    assert [tuple(c) for c in update.choices] == choices and update.value == [NORTHWIND]
