"""Questions as people type them: short, lower-case, and follow-ups that lean on the turn before, answered by
the real reader over a corpus written here."""
from __future__ import annotations

import pytest

import qa
from index.build import build_index
from qa.followup import elliptic, reask, with_context
from qa.question import analyse

RELEASES = """\
Secretary General visits Paris

Source: press office

On Monday (24 June 2024), NATO Secretary General Jens Stoltenberg met President Emmanuel Macron in Paris. They discussed the preparations for the Washington Summit and support to Ukraine.

Mr Stoltenberg thanked France for its contributions to the Alliance, including its leadership of the battlegroup in Romania.

Allies select a new Secretary General

Source: press office

The North Atlantic Council decided on 26 June 2024 to appoint Dutch Prime Minister Mark Rutte as the next Secretary General, succeeding Jens Stoltenberg. Mr Rutte will take office on 1 October 2024.

Harbour authority opens a new container terminal

Source: port press office

The harbour authority opened its new container terminal in Rotterdam on 3 May 2024. The terminal employs 450 people.
"""


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    root = tmp_path_factory.mktemp("natural")
    (root / "corpus").mkdir()
    (root / "corpus" / "releases.txt").write_text(RELEASES, encoding="utf-8")
    build_index(root / "corpus", root / "index")
    return qa.Assistant(root / "index")


def test_a_short_lower_case_question_is_answered(assistant):
    r = assistant.ask("who's replacing stoltenberg?")
    assert r.answered and "Mark Rutte" in r.text and r.text in r.evidence


def test_an_elliptic_follow_up_asks_the_earlier_question_again(assistant):
    first = assistant.ask("when did stoltenberg meet macron?")
    assert first.answered and "24 June 2024" in first.text
    r = assistant.ask("where?", history=[(first.question, first.text)])
    assert r.answered and r.text == "Paris"
    r = assistant.ask("when does he actually take over?", history=[("who's replacing stoltenberg?", "Mark Rutte")])
    assert r.answered and "1 October 2024" in r.text


def test_an_off_topic_casual_question_is_refused(assistant):
    r = assistant.ask("whats the weather in tokyo tomorrow")
    assert not r.answered and r.text == ""


@pytest.mark.parametrize("question, earlier, rewritten", [
    ("where?", "when did stoltenberg meet macron?", "where did stoltenberg meet macron?"),
    ("and when was that?", "where were the previous staff talks with japan?",
     "when were the previous staff talks with japan?"),
    ("from how many countries?", "how many people came to the clearing house?",
     "from how many countries came to the clearing house?"),
])
def test_elliptic_questions_take_the_earlier_question_with_their_own_wh_phrase(question, earlier, rewritten):
    assert elliptic(analyse(question))
    assert reask(earlier, question) == rewritten
    _, query, read = with_context(analyse(question), [(earlier, "an answer")])
    assert read == rewritten == query


def test_there_after_a_where_answer_is_that_place_and_a_full_question_is_not_elliptic():
    _, _, read = with_context(analyse("where do they go from there?"), [("where does the pool meet?", "the Press Shop")])
    assert read == "where do they go from the Press Shop?"
    assert not elliptic(analyse("where did the talks take place?"))
    q, _, read = with_context(analyse("what did nato announce?"), [("who met macron?", "Jens Stoltenberg")])
    assert read == "what did nato announce?" and not q.extra


@pytest.mark.parametrize("question", ["who is he?", "and who's he", "what's his job?", "what does he do?"])
def test_who_is_he_after_a_name_asks_for_the_persons_role(question):
    _, query, read = with_context(analyse(question), [("who's replacing stoltenberg?", "Mark Rutte")])
    assert read == query == "What is the position of Mark Rutte?"
    _, _, read = with_context(analyse("who is he meeting?"), [("who's replacing stoltenberg?", "Mark Rutte")])
    assert read == "who is Mark Rutte meeting?"  # not a question about who he is: the pronoun is the name


def test_who_is_he_is_answered_with_the_role_not_the_name_again(assistant):
    first = assistant.ask("who's replacing stoltenberg?")
    assert first.answered and "Mark Rutte" in first.text
    r = assistant.ask("who is he?", history=[(first.question, first.text)])
    assert r.answered and "Rutte" not in r.text, r.text
    assert "Prime Minister" in r.text or "Secretary General" in r.text, r.text
