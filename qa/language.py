"""Whether a question is confidently in another language than English (French, German or Spanish), so the
assistant can say that it reads English instead of only that the releases do not answer.

py3langid (langid.py's model, bundled: offline and deterministic), limited to English and those languages;
a question is flagged only with at least MIN_WORDS words and MIN_PROBABILITY, which on ~19,600 English
questions (SQuAD, Natural Questions, nato_dev, Reddit) flags 2, both holding Spanish names.
"""
from __future__ import annotations

from functools import lru_cache

from .question import words

#: the languages told apart from English, by langid code
LANGUAGES = {"fr": "French", "de": "German", "es": "Spanish"}
#: the least probability (among English and LANGUAGES) for a question to be flagged
MIN_PROBABILITY = 0.9
#: shorter questions ("when?", "who met zelenskyy") are never flagged: too little text to tell
MIN_WORDS = 3


@lru_cache(maxsize=1)
def _identifier():
    """langid's bundled model, loaded once (about a second), deciding among English and LANGUAGES only."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(["en", *LANGUAGES])
    return identifier


def foreign_language(text: str) -> str | None:
    """The name of the language `text` is confidently written in when it is one of LANGUAGES ("French"),
    else None (English, too short to tell, or not sure)."""
    if len(words(text)) < MIN_WORDS:
        return None
    code, probability = _identifier().classify(text)
    return LANGUAGES.get(code) if probability >= MIN_PROBABILITY else None
