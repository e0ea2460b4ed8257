"""A question's words, its wh-word and the days it names, read from its text alone (no parsing at
query time). Which words answer it is the reader's job; these serve retrieval and follow-ups.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Iterable

from index.dates import MONTH_PATTERN, month_number

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

# -- days named in text ---------------------------------------------------------

@dataclass(frozen=True)
class DayMention:
    """A calendar day written in text; `year` is None when the text leaves it out ("26 June")."""

    day: int
    month: int
    year: int | None = None


def _day(name: str) -> str:
    return rf"(?P<{name}>\d{{1,2}})(?:st|nd|rd|th)?(?!\d)"


def _month(name: str) -> str:
    return rf"(?P<{name}>{MONTH_PATTERN})"


def _year(name: str) -> str:
    return rf"(?:,?\s+(?P<{name}>\d{{4}}))?\b"


def _to(name: str) -> str:
    return rf"\s*(?P<{name}>-|–|to|until|and|&)\s*"


#: tried in this order at each position: a span of days ("24 to 26 June 2024", "June 24-26"),
#: ISO, day-month ("27 June", "27th of June 2024"), month-day ("June 26", "June 26, 2024");
#: group names are <form>_<d0|d1|m|y|to>
_DAYS = re.compile("|".join((
    rf"\b{_day('a_d0')}{_to('a_to')}{_day('a_d1')}\s+(?:of\s+)?{_month('a_m')}{_year('a_y')}",
    rf"\b{_month('b_m')}\s+{_day('b_d0')}{_to('b_to')}{_day('b_d1')}{_year('b_y')}",
    r"\b(?P<c_y>\d{4})-(?P<c_m>\d{2})-(?P<c_d0>\d{2})\b",
    rf"\b{_day('d_d0')}\s+(?:of\s+)?{_month('d_m')}{_year('d_y')}",
    rf"\b{_month('e_m')}\s+{_day('e_d0')}{_year('e_y')}",
)), re.IGNORECASE)
#: the longest span of days read as every day in it ("from 1 to 31 July"); a longer one is its two ends
MAX_DAY_SPAN = 31


def day_mentions(text: str) -> tuple[DayMention, ...]:
    """Every calendar day written in `text`, in order; a span "24 to 26 June" gives each day in it.

    Month names are read in any case, except "may", which must be written "May" (it is also a verb).
    """
    return tuple(d for m in _DAYS.finditer(text) for d in _days_of(m, text))


def _days_of(m: re.Match, text: str) -> list[DayMention]:
    """The days one match of _DAYS in `text` names (none for a lower-case "may", a month past 12)."""
    form = next(k[0] for k, v in m.groupdict().items() if v is not None)
    g = {k[2:]: v for k, v in m.groupdict().items() if k[0] == form}
    month_text = g["m"]
    if month_text.isdigit():
        month = int(month_text)
    elif month_text.rstrip(".").lower() == "may" and not month_text.startswith("M"):
        return []
    else:
        month = month_number(month_text)
    year = int(g["y"]) if g.get("y") else None
    first = int(g["d0"])
    last = int(g.get("d1") or first)
    # "24 to 26 June" and "between 24 and 26 June" are every day from one to the other,
    # "24 and 26 June" just those two
    both = (g.get("to") or "").lower() in ("and", "&") and not re.search(r"\bbetween\s+$", text[:m.start()], re.IGNORECASE)
    days = range(first, last + 1) if 0 <= last - first < MAX_DAY_SPAN and not both else (first, last)
    return [DayMention(d, month, year) for d in days if 1 <= d <= 31 and 1 <= month <= 12]


#: a day typed as numbers: day first ("20/06/2024", "20.06.2024"), month first only when the second number
#: cannot be a month ("06/20/2024")
_NUMERIC_DAY = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})")


def typed_day(text: str) -> DayMention | None:
    """The one day `text` is, as a person types it in a date box: any form day_mentions reads ("2024-06-20",
    "20 June", "june 20", "June 20, 2024") or numbers, day first ("20/06/2024"); None when it is not one day."""
    clean = " ".join(text.split()).rstrip(".")
    if m := _NUMERIC_DAY.fullmatch(clean):
        day, month, year = (int(x) for x in m.groups())
        if month > 12 >= day:
            day, month = month, day
        return DayMention(day, month, year) if 1 <= month <= 12 and 1 <= day <= 31 else None
    m = _DAYS.fullmatch(clean)
    days = _days_of(m, clean) if m else []
    return days[0] if len(days) == 1 else None


def _iso(year: int, mention: DayMention) -> str | None:
    try:
        return date(year, mention.month, mention.day).isoformat()
    except ValueError:
        return None  # 31 June, 29 February of a common year


def resolve_days(mentions: Iterable[DayMention], known_dates: Iterable[str | None] = (),
                 default_year: int | None = None) -> tuple[str, ...]:
    """ISO dates of `mentions`, sorted and without repeats.

    A day written without its year takes `default_year` when given (a release's own year for the
    dates in its text); else the year(s) of the `known_dates` (the corpus' release dates) on that
    month and day; else their most common year (the latest on a tie); else this year.
    """
    mentions = list(mentions)
    if not mentions:
        return ()
    known = [d for d in known_dates if d]
    years = Counter(int(d[:4]) for d in known)
    common = max(years, key=lambda y: (years[y], y)) if years else date.today().year
    out: set[str] = set()
    for m in mentions:
        if m.year is not None:
            cands = [m.year]
        elif default_year is not None:
            cands = [default_year]
        else:
            cands = sorted({int(d[:4]) for d in known if d[5:] == f"{m.month:02d}-{m.day:02d}"}) or [common]
        out.update(iso for y in cands if (iso := _iso(y, m)))
    return tuple(sorted(out))


WH_WORDS = frozenset("who whom whose when where which what how why".split())


@dataclass(frozen=True)
class Question:
    """A question's words, and the context earlier turns add to it."""

    text: str
    tokens: tuple[str, ...]  # lower-cased words
    content: tuple[str, ...]  # words that carry meaning (stop words out)
    wh: str  # its first wh-word (who for whom/whose too), else "other"
    extra: tuple[str, ...] = field(default_factory=tuple)  # context words from earlier turns
    extra_weight: float = 0.5  # how much finding an `extra` word in a sentence counts
    days: tuple[DayMention, ...] = ()  # calendar days it names ("on 26 June"), year not yet resolved


#: "who's", "when's", "what're", "that's": a wh-word or pronoun with its verb run on, read as the bare word
_CONTRACTED = re.compile(r"^(who|what|when|where|why|how|which|that|it|there|here)'(?:s|re|d|ll|ve)$")


def words(text: str) -> list[str]:
    out = [w.lower().replace("’", "'") for w in WORD.findall(text) if w[0].isalnum()]
    return [m[1] if (m := _CONTRACTED.match(w)) else w for w in out]


@lru_cache(maxsize=4096)
def analyse(text: str) -> Question:
    """Read the words, the wh-word and the named days of a question."""
    toks = words(text)
    wh = next((w for w in toks if w in WH_WORDS), "other")
    return Question(text=text, tokens=tuple(toks), content=tuple(w for w in toks if w not in STOPWORDS),
                    wh="who" if wh in ("whom", "whose") else wh, days=day_mentions(text))
