"""Calendar days written in text: the first full date of a release, month names, days as ordinals.

One rule for the whole project: a release's date (index.converters), the days a question names
(qa.question) and the day numbers the index filters on (rows.npy) all come from here.
"""
from __future__ import annotations

import re
from datetime import date

#: month names, lower-case, to their number
MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
#: a month name or its abbreviation, captured
MONTH_PATTERN = r"(January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
_DATE_DMY = re.compile(rf"\b(\d{{1,2}})\s+{MONTH_PATTERN}\s+(\d{{4}})\b")
_DATE_MDY = re.compile(rf"\b{MONTH_PATTERN}\s+(\d{{1,2}}),\s+(\d{{4}})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def month_number(name: str) -> int:
    """1-12 for a month name or its abbreviation ("June", "jun.", "Sept")."""
    key = name.lower().rstrip(".")[:3]
    return next(v for k, v in MONTHS.items() if k.startswith(key))


def find_date(text: str) -> str | None:
    """The first calendar date written in `text`, as an ISO string, or None."""
    found = []
    for rx, order in ((_DATE_DMY, "dmy"), (_DATE_MDY, "mdy"), (_DATE_ISO, "iso")):
        m = rx.search(text)
        if m:
            found.append((m.start(), m, order))
    for _, m, order in sorted(found, key=lambda t: t[0]):
        try:
            if order == "iso":
                y, mo, d = int(m[1]), int(m[2]), int(m[3])
            else:
                d, mon, y = (m[1], m[2], m[3]) if order == "dmy" else (m[2], m[1], m[3])
                mo = month_number(mon)
                d, y = int(d), int(y)
            return date(y, mo, d).isoformat()
        except ValueError:
            continue
    return None


def day_number(iso: str | None) -> int:
    """An ISO day as an ordinal (comparable with <, stored in rows.npy); -1 for None."""
    return date.fromisoformat(iso).toordinal() if iso else -1


def iso_day(number: int) -> str:
    """The ISO day of an ordinal from `day_number`."""
    return date.fromordinal(int(number)).isoformat()
