"""What a question asks for, read from its words alone (no parsing at query time).

The expected answer type steers span choice: a `who` question wants a person or an
organisation, `when` a date, `how many` a number, `which country` a place, and so on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

WORD = re.compile(r"[\w’']+|[^\w\s]", re.UNICODE)

STOPWORDS = frozenset("""
a an the of in on at to for from by with about as into over after before between during under than
and or but nor so if then that this these those there here it its it's is are was were be been being am
do does did done doing have has had having will would shall should can could may might must
what which who whom whose when where why how whatever whichever
i me my we our you your he him his she her they them their one ones
not no yes also just only very more most much many some any all each other such own same too
according say said says tell told called name named
""".split())

PERSON = ("PERSON",)
ORGLIKE = ("ORG", "NORP")
PLACE = ("GPE", "LOC", "FAC", "ORG")
DATE = ("DATE", "TIME")
NUMBER = ("CARDINAL", "QUANTITY", "MONEY", "PERCENT")
NAMES = ("PERSON", "ORG", "GPE", "LOC", "FAC", "WORK_OF_ART", "EVENT", "PRODUCT", "NORP", "LAW")

#: question nouns ("which country", "what year") and the entity types that answer them
NOUN_TYPES: dict[str, tuple[str, ...]] = {}
for _words, _types in (
    ("country countries nation nations state states city cities capital town region province county "
     "continent island place places location", ("GPE", "LOC", "FAC")),
    ("organisation organization organisations organizations company companies agency agencies "
     "division command institution institutions body alliance group party team university school "
     "college consortium committee council ministry network firm channel broadcaster", ("ORG",)),
    ("person people man woman politician president leader minister king queen general secretary "
     "official officer commander chief ambassador author founder director manager chair chairman "
     "emperor duke scientist player member", ("PERSON",)),
    ("year years date day days month months century centuries decade time period era season", DATE),
    ("percentage percent proportion share", ("PERCENT",)),
    ("number amount population size", NUMBER),
    ("temperature speed distance height length width weight area depth elevation altitude rate "
     "cost costs price prices fee fees salary budget revenue income value worth", ("QUANTITY", "MONEY", "PERCENT", "CARDINAL")),
    ("language languages", ("LANGUAGE", "NORP")),
    ("nationality religion ethnicity", ("NORP",)),
    ("event events war battle", ("EVENT",)),
):
    for _w in _words.split():
        NOUN_TYPES[_w] = _types

def _noun_type(word: str) -> tuple[str, ...]:
    """Entity types answering a question noun, singular, plural or possessive ("country's")."""
    w = word.removesuffix("'s")
    return NOUN_TYPES.get(w) or NOUN_TYPES.get(w.rstrip("s")) or ()


AUX = frozenset("do does did is are was were has have had will would can could should may might must".split())


@dataclass(frozen=True)
class Question:
    """A question's words and what kind of answer it wants."""

    text: str
    tokens: tuple[str, ...]  # lower-cased words
    content: tuple[str, ...]  # words that carry meaning (stop words out)
    wh: str  # who, when, where, how many, what, which, why, how, other
    types: tuple[str, ...] = ()  # spaCy entity labels that would answer it, best first
    focus: str = ""  # the noun after which/what ("which country" -> "country")
    focus_phrase: tuple[str, ...] = ()  # its phrase ("what type of Turing machine" -> turing, machine)
    subject_wh: bool = False  # the wh-word is the subject ("What keeps the lanes open?")
    extra: tuple[str, ...] = field(default_factory=tuple)  # context words from earlier turns
    extra_weight: float = 0.5  # how much finding an `extra` word in a sentence counts


def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in WORD.findall(text) if w[0].isalnum()]


@lru_cache(maxsize=4096)
def analyse(text: str) -> Question:
    """Read the wh-word, the focus noun and the expected answer types of a question."""
    toks = words(text)
    content = tuple(w for w in toks if w not in STOPWORDS)
    wh, types, focus, subject_wh = "other", (), "", False
    focus_phrase: tuple[str, ...] = ()
    low = " ".join(toks)
    first = next((i for i, w in enumerate(toks) if w in {"who", "whom", "whose", "when", "where", "which",
                                                         "what", "how", "why"}), None)
    if first is not None:
        w = toks[first]
        nxt = toks[first + 1] if first + 1 < len(toks) else ""
        nxt2 = toks[first + 2] if first + 2 < len(toks) else ""
        if w in ("who", "whom", "whose"):
            wh, types = "who", PERSON + ORGLIKE
            subject_wh = nxt not in AUX or nxt in ("is", "was", "are", "were")
        elif w == "when":
            wh, types = "when", DATE
        elif w == "where":
            wh, types = "where", PLACE
        elif w == "why":
            wh = "why"
        elif w == "how":
            if nxt in ("many",):
                wh, types = "how many", ("CARDINAL", "QUANTITY", "MONEY", "PERCENT", "DATE")
                focus = nxt2  # "how many men" -> a number followed by 'men'
            elif nxt in ("much",):
                wh, types = "how much", ("MONEY", "QUANTITY", "PERCENT", "CARDINAL")
            elif nxt in ("long",):
                wh, types = "how long", ("DATE", "TIME", "QUANTITY", "CARDINAL")
            elif nxt in ("old",):
                wh, types = "how old", ("DATE", "CARDINAL")
            elif nxt in ("far", "big", "large", "tall", "high", "deep", "wide", "heavy", "often", "fast"):
                wh, types = "how " + nxt, ("QUANTITY", "CARDINAL", "PERCENT", "DATE")
            else:
                wh = "how"
        else:  # what / which
            wh = w
            # the focus noun: "which country", "what kind of weapon", "what type of Turing machine is"
            j = first + 1
            while j < len(toks) and toks[j] in ("kind", "type", "sort", "of", "the", "a", "an", "other", "two",
                                                "three", "main", "specific", "particular"):
                j += 1
            if j < len(toks) and toks[j] not in AUX:
                phrase = []
                for w2 in toks[j:j + 4]:
                    if w2 in AUX:
                        break
                    phrase.append(w2)
                cut = j + len(phrase) < len(toks) and toks[j + len(phrase)] in AUX
                focus = phrase[-1] if cut else phrase[0]
                focus_phrase = tuple(phrase) if cut else (phrase[0],)
                # "what year", "which command", "what percentage of farmland"
                types = next((_noun_type(w2) for w2 in phrase if _noun_type(w2)), ())
                if "name" in phrase:
                    types = NAMES
            elif nxt in AUX:
                # "what is the date", "what was the name of"
                rest = toks[first + 2:]
                k = 0
                while k < len(rest) and rest[k] in ("the", "a", "an"):
                    k += 1
                if k + 1 < len(rest) and rest[k] == "name" and rest[k + 1] == "of":
                    # "what was the name of the count" -> the count's name: a proper name
                    k += 2
                    while k < len(rest) and rest[k] in ("the", "a", "an"):
                        k += 1
                    focus = rest[k] if k < len(rest) else ""
                    types = NOUN_TYPES.get(focus, NAMES)
                elif k < len(rest) and rest[k] == "name":
                    focus, types = "name", NAMES  # "what was the name given to ..."
                else:
                    # "what is the largest upload size" -> the first typed noun of the phrase
                    phrase = rest[k:k + 4]
                    cut = next((n for n, w2 in enumerate(phrase) if w2 in ("of", "in", "on", "for", "that")), len(phrase))
                    hit = next((w2 for w2 in phrase[:cut] if _noun_type(w2)), "")
                    if hit:
                        focus, types = hit, _noun_type(hit)
            subject_wh = bool(nxt) and nxt not in AUX and not focus
            if focus and nxt2 and nxt2 not in AUX and nxt == focus:
                subject_wh = True
    if "what time" in low:
        types = ("TIME", "DATE", "CARDINAL")
    if focus and not focus_phrase:
        focus_phrase = (focus,)
    return Question(text=text, tokens=tuple(toks), content=content, wh=wh, types=types, focus=focus,
                    focus_phrase=focus_phrase, subject_wh=subject_wh)
