"""The bundled corpus (the nine NATO releases of June 2024) and questions about dates, on the real
model, FAISS index and spaCy annotations of an index built here from the project's bundled release file
(copied alone: nothing a user added to corpus/ counts)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qa
from index import config
from index.build import build_index
from index.releases import read_corpus
from qa.calibration import LABELS, Calibration, label, shipped
from qa.question import DayMention, day_mentions, resolve_days

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "corpus" / "nato-releases-2024-06.txt"
SHARED = ROOT.parent / "shared" / "corpus" / "nato-releases-2024-06.txt"

#: (title, date) of each release, in file order, as written in the file
RELEASES = [
    ("Secretary General welcomes President Zelenskyy to NATO Headquarters to prepare Washington Summit", "2024-06-27"),
    ("NATO and Japan discuss cooperation at the military staff talks", "2024-06-26"),
    ("Secretary General: Estonia leads by example in NATO", "2024-06-27"),
    ("NATO Allies select Mark Rutte as next Secretary General", "2024-06-26"),
    ("Chair of the NATO Military Committee attends African Chiefs of Defense Conference in Botswana", "2024-06-26"),
    ("Deep Dive Recap: Conflict-Related Sexual Violence and the Gender Perspective", "2024-06-19"),
    ("NATO Allies and partners boost interoperability through defence education", None),  # "last week"
    ("NATO Secretary General meets the Prime Minister of Estonia", "2024-06-27"),
    ("Secretary General praises France’s leading role in NATO during visit to Paris", "2024-06-24"),
]
RUTTE = RELEASES[3][0]
PARIS = RELEASES[8][0]
ROOT_ENV = dict(os.environ, PYTHONPATH=str(ROOT))


# -- the corpus as shipped ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    """A folder holding the bundled release file alone: what a user added to corpus/ (uploads, their own
    releases) is not part of these tests."""
    folder = tmp_path_factory.mktemp("bundled")
    shutil.copy(BUNDLED, folder / BUNDLED.name)
    return folder


def test_the_default_corpus_ships_the_nato_file_alone(monkeypatch):
    monkeypatch.delenv("QA_CORPUS_DIR", raising=False)
    assert config.corpus_dir() == ROOT / "corpus"
    assert config.uploads_dir() == ROOT / "corpus" / "uploads"
    git = subprocess.run(["git", "ls-files", "corpus"], cwd=ROOT, capture_output=True, text=True)
    if git.returncode == 0:  # a git checkout: the file is all it tracks there, and uploads are ignored
        assert git.stdout.split() == [f"corpus/{BUNDLED.name}"]
        ignored = subprocess.run(["git", "check-ignore", "-q", "corpus/uploads/release.txt"], cwd=ROOT)
        assert ignored.returncode == 0
    if SHARED.exists():
        assert BUNDLED.read_bytes() == SHARED.read_bytes()


def test_bundled_corpus_parses_into_its_nine_releases_verbatim(bundled):
    report = read_corpus(bundled)
    assert report.skipped == []
    assert [(r.title, r.date) for r in report.releases] == RELEASES
    raw = BUNDLED.read_text(encoding="utf-8")
    # the file is the releases' headers and bodies, exactly, with only whitespace between them
    # (the whitespace around a body is trimmed, a stray non-breaking space included)
    pos, between = 0, []
    for r in report.releases:
        assert r.source == "NATO"
        for part in (f"{r.title}\n\nSource: NATO\n", r.text):
            start = raw.index(part, pos)
            between.append(raw[pos:start])
            pos = start + len(part)
    between.append(raw[pos:])
    assert all(g.strip() == "" for g in between)
    # non-breaking spaces and curly quotes survive
    texts = "".join(r.text for r in report.releases)
    titles = "".join(r.title for r in report.releases)
    assert texts.count("\u00a0") + "".join(between).count("\u00a0") == raw.count("\u00a0") > 20
    for mark in "“”’":
        assert texts.count(mark) + titles.count(mark) == raw.count(mark) > 0


# -- days in text ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, days", [
    ("Whom did the Secretary General meet on 24 June 2024?", [(24, 6, 2024)]),
    ("What did NATO announce on 26 June?", [(26, 6, None)]),
    ("What happened on June 26?", [(26, 6, None)]),
    ("Who came on Thursday 27 June?", [(27, 6, None)]),
    ("on Thursday (27 June 2024) and June 26, 2024", [(27, 6, 2024), (26, 6, 2024)]),
    ("From 24 to 26 June 2024, the Chair attended", [(24, 6, 2024), (25, 6, 2024), (26, 6, 2024)]),
    ("on 24 and 26 June", [(24, 6, None), (26, 6, None)]),
    ("the 27th of June", [(27, 6, None)]),
    ("2024-06-19", [(19, 6, 2024)]),
    ("in July 2023, 26 countries, 11:00 (CEST), the 13th edition, Allies may 2 things", []),
])
def test_day_mentions(text, days):
    assert [(m.day, m.month, m.year) for m in day_mentions(text)] == days


def test_a_day_without_a_year_takes_the_corpus_years():
    known = ["2024-06-26", "2024-06-27", None, "2023-01-05"]
    assert resolve_days([DayMention(26, 6)], known) == ("2024-06-26",)
    assert resolve_days([DayMention(28, 6)], known) == ("2024-06-28",)  # the corpus' most common year
    assert resolve_days([DayMention(5, 1)], known) == ("2023-01-05",)  # the year a release has that day
    assert resolve_days([DayMention(26, 6)], known, default_year=2020) == ("2020-06-26",)
    assert resolve_days([DayMention(31, 6), DayMention(1, 7, 2025)], known) == ("2025-07-01",)


# -- questions on the bundled corpus -----------------------------------------------------------

@pytest.fixture(scope="module")
def nato(bundled, tmp_path_factory):
    """The index of the bundled release file, built here (not the developer's .index/)."""
    index_dir = tmp_path_factory.mktemp("nato") / "index"
    report = build_index(bundled, index_dir)
    assert report.releases == 9
    return index_dir, qa.Assistant(index_dir)


def test_rutte_succeeds_stoltenberg(nato):
    _, a = nato
    first = a.ask("Who will succeed Jens Stoltenberg as Secretary General?")
    assert first.answered and first.text == "Mark Rutte"
    assert first.sources[0].title == RUTTE and first.sources[0].date == "2024-06-26"
    assert "Mark Rutte" in first.evidence


def test_when_he_takes_office(nato):
    _, a = nato
    first = a.ask("Who will succeed Jens Stoltenberg as Secretary General?")
    follow = a.ask("When does he take office?", history=[(first.question, first.text)])
    assert follow.answered and follow.text == "1 October 2024"
    assert follow.sources[0].title == RUTTE


def _release_date(a, answer) -> str | None:
    return a.release(answer.release_id).date


@pytest.mark.parametrize("question, day", [
    ("Whom did the Secretary General meet on 24 June 2024?", "2024-06-24"),
    ("Who did the Secretary General meet on June 24?", "2024-06-24"),
    ("What did NATO announce on 26 June?", "2024-06-26"),
    ("Whom did the Secretary General meet on Thursday 27 June?", "2024-06-27"),
    ("What happened on 19 June?", "2024-06-19"),
])
def test_a_day_named_in_the_question_favours_that_days_releases(nato, question, day):
    _, a = nato
    r = a.ask(question)
    assert _release_date(a, r) == day, r.evidence
    assert r.sources[0].date == day
    assert [s.date for s in r.sources[:3]].count(day) >= 2, [(s.date, s.title) for s in r.sources]


def test_the_day_changes_which_release_answers(nato):
    _, a = nato
    plain = a.ask("Whom did the Secretary General meet?")
    dated = a.ask("Whom did the Secretary General meet on 24 June 2024?")
    assert _release_date(a, plain) != "2024-06-24"
    assert dated.sources[0].title == PARIS and "24 June 2024" in dated.evidence


@pytest.mark.parametrize("since, until", [
    ("2024-06-24", "2024-06-24"),
    ("2024-06-27", None),
    (None, "2024-06-25"),
    ("2024-06-26", "2024-06-26"),
])
def test_since_until_keep_to_releases_in_the_range(nato, since, until):
    _, a = nato
    for question in ("Whom did the Secretary General meet?", "Who will succeed Jens Stoltenberg as Secretary General?"):
        r = a.ask(question, since=since, until=until)
        dates = [s.date for s in r.sources] + [_release_date(a, r)]
        assert r.sources and all(d is not None and (since or d) <= d <= (until or d) for d in dates), dates


def test_since_until_accept_dates_and_blanks(nato):
    import datetime as dt

    _, a = nato
    r = a.ask("Who will succeed Jens Stoltenberg as Secretary General?", since=dt.date(2024, 6, 26), until="")
    assert r.answered and "Mark Rutte" in r.text and all(s.date >= "2024-06-26" for s in r.sources)


@pytest.mark.parametrize("since, until", [
    ("june 26", "26 June"), ("26/06/2024", "June 26, 2024"), ("2024-06-26", "26.06.2024"), ("26th of June", "06/26/2024"),
])
def test_since_until_read_days_as_people_type_them(nato, since, until):
    """A day without a year takes the releases' year, as in questions; numbers are read day first."""
    _, a = nato
    r = a.ask("Who will succeed Jens Stoltenberg as Secretary General?", since=since, until=until)
    assert r.answered and r.text == "Mark Rutte" and {s.date for s in r.sources} == {"2024-06-26"}


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and "\n" not in message and ". " not in message


@pytest.mark.parametrize("since, until, fragment", [
    ("2024-06-27", "2024-06-20", "backwards"),
    ("26 Juin", None, "since date '26 Juin' is not a date"),
    (None, "2024-6-26", "until date '2024-6-26' is not a date"),
    ("2024-02-30", None, "not a date"),
    ("31/06/2024", None, "not a date"),
    ("24 to 26 June", None, "not a date"),
    ("june 27", "june 26", "backwards: since \\(2024-06-27\\) is after until \\(2024-06-26\\)"),
    ("2024-07-01", "2024-07-31", "No release is dated from 2024-07-01 to 2024-07-31"),
    ("2025-01-01", None, "No release is dated from 2025-01-01 on"),
])
def test_bad_date_ranges_say_so_in_one_sentence(nato, since, until, fragment):
    _, a = nato
    with pytest.raises(qa.InvalidQuestion, match=fragment) as exc:
        a.ask("Who will succeed Jens Stoltenberg?", since=since, until=until)
    assert _one_sentence(str(exc.value)), str(exc.value)
    if "No release" in fragment:
        assert "2024-06-19 to 2024-06-27" in str(exc.value)


def test_answers_carry_a_confidence_label(nato):
    from ui.api import answer_to_dict

    _, a = nato
    for question in ("Who will succeed Jens Stoltenberg as Secretary General?", "How tall is the Eiffel Tower?"):
        r = a.ask(question)
        assert r.label in LABELS and r.label == label(r.score)
        d = r.to_dict()
        assert d["label"] == r.label and d["score"] == r.score
        api = answer_to_dict(r)
        assert api["label"] == r.label and api["score"] == r.score


def test_labels_follow_the_cut_offs():
    hi, lo = shipped().cutoffs["confident"], shipped().cutoffs["likely"]
    assert 0 < lo < hi <= 1, "the shipped reader's cut-offs were fitted"
    assert [label(hi), label((hi + lo) / 2), label(lo), label(lo - 1e-6), label(0.0)] == \
        ["confident", "likely", "likely", "unsure", "unsure"]
    assert Calibration(cutoffs={"confident": 0.9, "likely": 0.4}).label(0.5) == "likely"


def test_label_cut_offs_come_from_right_answers():
    from qa.training.calibrate import label_cutoffs

    scored = ([(0.9 - i / 1000, i % 10 != 5) for i in range(100)]  # 90% right
              + [(0.5 - i / 1000, i * 7 % 10 < 6) for i in range(100)]  # 60% right
              + [(0.2 - i / 1000, i * 3 % 10 < 2) for i in range(100)])  # 20% right
    cut = label_cutoffs(scored, {"confident": 0.8, "likely": 0.5}, min_answers=20)
    assert 0.39 < cut["likely"] < 0.5 < 0.79 < cut["confident"] <= 0.9


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=ROOT_ENV,
                          cwd=ROOT, timeout=180)


def test_cli_dates_and_label(nato):
    index_dir, _ = nato
    out = _cli("Whom did the Secretary General meet?", "--index", str(index_dir),
               "--since", "2024-06-24", "--until", "2024-06-24")
    assert out.returncode == 0, out.stderr
    assert PARIS in out.stdout and "(2024-06-24)" in out.stdout
    assert any(line.startswith("Confidence: ") and line.split()[1] in LABELS for line in out.stdout.splitlines())
    js = _cli("Who will succeed Jens Stoltenberg as Secretary General?", "--index", str(index_dir), "--json")
    d = json.loads(js.stdout)
    assert d["text"] == "Mark Rutte" and d["label"] in LABELS and isinstance(d["score"], float)
    for args, fragment in ((["--since", "2024-06-28", "--until", "2024-06-01"], "backwards"),
                           (["--since", "yesterday"], "not a date"),
                           (["--until", "2023-12-31"], "No release is dated")):
        bad = _cli("Who will succeed Jens Stoltenberg?", "--index", str(index_dir), *args)
        assert bad.returncode == 2 and fragment in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert bad.stdout == ""


def test_the_readme_dated_example_meets_macron(nato):
    """The README's example: whom the Secretary General met, kept to the releases of 24 June 2024."""
    _, a = nato
    r = a.ask("Whom did the Secretary General meet?", since="2024-06-24", until="2024-06-24")
    assert r.answered and "Macron" in r.text and r.sources[0].title == PARIS, (r.text, r.evidence)
