"""qa.language on real questions: French, German and Spanish questions are told apart; English ones, however
short or full of names, never are (the bundled langid model, no stubs)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.language import foreign_language

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

FOREIGN = {
    "French": ["Qui va succéder à Jens Stoltenberg ?", "Qui sera le prochain secrétaire général de l'OTAN ?",
               "Quand prendra-t-il ses fonctions ?", "Où le secrétaire général a-t-il rencontré le président Macron ?",
               "Combien de pays étaient représentés ?", "Qu'a annoncé l'OTAN le 26 juin ?"],
    "German": ["Wer wird Nachfolger von Jens Stoltenberg?", "Wann tritt er sein Amt an?",
               "Wo hat der Generalsekretär Präsident Macron getroffen?", "Was hat die NATO angekündigt?",
               "Wie viele Länder waren vertreten?", "Welcher Ministerpräsident hat die NATO besucht?"],
    "Spanish": ["¿Quién sucederá a Jens Stoltenberg?", "¿Cuándo asume el cargo?",
                "¿Dónde se reunió el secretario general con Macron?", "¿Cuántos países estuvieron representados?",
                "¿Qué anunció la OTAN el 26 de junio?", "Quién dio la bienvenida a Zelenski?"],
}

ENGLISH = [
    "who's replacing stoltenberg", "when?", "and where?", "who met zelenskyy", "rutte", "Kaja Kallas",
    "estonia prime minister", "Macron Paris visit", "NATO Japan staff talks", "what about japan?", "who is he?",
    "madrid summit", "la paz", "who won the Tour de France?", "What is the Bundeswehr?",
    "Who will succeed Jens Stoltenberg as Secretary General?", "When does he take office?",
    "Which Baltic country's prime minister visited NATO headquarters on 27 June?",
    "Where did the Secretary General meet President Macron on 24 June?", "How many moons does Jupiter have?",
]


@pytest.mark.parametrize("language, question", [(lang, q) for lang, qs in FOREIGN.items() for q in qs])
def test_questions_in_french_german_spanish_are_named(language, question):
    assert foreign_language(question) == language


@pytest.mark.parametrize("question", ENGLISH)
def test_english_questions_short_or_not_are_never_flagged(question):
    assert foreign_language(question) is None


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no question files at {SHARED}")
def test_no_question_of_the_nato_question_files_is_flagged():
    questions = [json.loads(line)["question"] for name in ("nato_dev.jsonl", "nato_natural_dev.jsonl")
                 for line in (SHARED / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(questions) > 50
    assert [q for q in questions if foreign_language(q)] == []
