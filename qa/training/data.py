"""Training material for the reader: every source that may be trained on, split, normalised and grouped
the way the product reads.

A *group* is one question with the windows retrieval would bring up for it: the window holding its
answer (when it has one) and distractor windows of the same source that share the question's words
but not its answer. The reader is trained on a group at once, with one softmax over all its windows'
spans and no-answer options (shared normalisation, Clark & Gardner 2018), so its scores compare
across windows and the no-answer decision is one number per question.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from .. import config

#: the sources, by name: the SQuAD pool and the extra datasets (see ../shared/data/extra/README.md)
EXTRA = {"qed": "qed_nq.json", "squadshifts_wiki": "squadshifts_new_wiki.json",
         "squadshifts_reddit": "squadshifts_reddit.json", "squadshifts_amazon": "squadshifts_amazon.json",
         "covidqa": "covidqa.json", "subjqa": "subjqa.json"}
SOURCES = ("pool", *EXTRA)
#: sources whose paragraphs are in Natural Questions' spaced tokenisation ("word , word ( x )")
SPACED = frozenset({"qed"})


@dataclass(frozen=True)
class Example:
    """One question over one paragraph; `start` is the first answer's offset, -1 when unanswerable."""

    source: str
    unit: str  # what is held out whole: the article's title (or "title#paragraph")
    question: str
    context: str
    start: int
    answer: str


@dataclass(frozen=True)
class Window:
    """A stretch of a paragraph the reader reads; `start` is the answer's offset in `text`, -1 for none."""

    text: str
    start: int = -1
    answer: str = ""


@dataclass(frozen=True)
class Group:
    """A question with the windows read together; `answer` indexes the window with the answer, -1 for none."""

    source: str
    question: str
    windows: tuple[Window, ...]
    answer: int


# -- sources ---------------------------------------------------------------------
def source_path(name: str, data_dir: Path | None = None) -> Path:
    data_dir = Path(data_dir or config.TRAIN_POOL.parent)
    return data_dir / "squad_train_pool.json" if name == "pool" else data_dir / "extra" / EXTRA[name]


_SPACE_BEFORE = re.compile(r" (?=[,.;:!?%)\]}]|'s\b|'\s|n't\b|'re\b|'ve\b|'ll\b|'d\b|'m\b)")
_SPACE_AFTER = re.compile(r"(?<=[(\[{$]) ")


def unspace(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Text in NQ's spaced tokenisation written as prose ("Paris , France" -> "Paris, France"), with
    the (start, end) spans moved to where their text now is."""
    drop = sorted({m.start() for rx in (_SPACE_BEFORE, _SPACE_AFTER) for m in rx.finditer(text)})
    if not drop:
        return text, spans
    import bisect

    dropped = set(drop)
    out = "".join(ch for i, ch in enumerate(text) if i not in dropped)
    moved = lambda i: i - bisect.bisect_left(drop, i)  # noqa: E731  (dropped characters before i)
    return out, [(moved(s), moved(e)) for s, e in spans]


def load_examples(name: str, data_dir: Path | None = None) -> list[Example]:
    """A source's questions as Examples (first answer only; offsets checked, the pool's repaired)."""
    arts = json.loads(source_path(name, data_dir).read_text(encoding="utf-8"))["data"]
    out = []
    per_paragraph = len(arts) == 1  # a source that is one "article" (Reddit) is held out by paragraph
    for art in arts:
        for i, p in enumerate(art["paragraphs"]):
            unit = f"{art['title']}#{i}" if per_paragraph else art["title"]
            ctx = p["context"]
            qas = []
            for q in p["qas"]:
                ans = [] if q.get("is_impossible") else q.get("answers", [])
                a = ans[0] if ans else None
                start = a["answer_start"] if a else -1
                if a and ctx[start:start + len(a["text"])] != a["text"]:
                    start = ctx.find(a["text"])  # the pool's offsets are first occurrences
                    if start < 0:
                        continue
                qas.append((" ".join(q["question"].split()), start, a["text"] if a else ""))
            if name in SPACED:
                ctx, spans = unspace(ctx, [(s, s + len(t)) if s >= 0 else (0, 0) for _, s, t in qas])
                qas = [(q, s, ctx[s:e]) if s0 >= 0 else (q, -1, "") for (q, s0, _), (s, e) in zip(qas, spans)]
            out += [Example(name, unit, q, ctx, s, t) for q, s, t in qas]
    return out


def split(examples: list[Example], holdout: int, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, held out): `holdout` whole units (articles) of the source kept out of training, to calibrate on."""
    units = sorted({e.unit for e in examples})
    held = set(random.Random(seed).sample(units, min(holdout, len(units) - 1))) if holdout else set()
    return [e for e in examples if e.unit not in held], [e for e in examples if e.unit in held]


def held_out_squad(held: list[Example]) -> dict:
    """Held-out examples as SQuAD 2.0 data (one article a unit), the corpus calibration asks them over."""
    arts: dict[str, dict[str, list]] = {}
    for e in held:
        paras = arts.setdefault(f"{e.source}: {e.unit}", {})
        paras.setdefault(e.context, []).append(
            {"question": e.question, "is_impossible": e.start < 0,
             "answers": [{"text": e.answer, "answer_start": e.start}] if e.start >= 0 else []})
    return {"data": [{"title": t, "paragraphs": [{"context": c, "qas": q} for c, q in ps.items()]}
                     for t, ps in arts.items()]}


# -- windows and groups ---------------------------------------------------------
def paragraph_windows(contexts: list[str]) -> dict[str, list[tuple[int, int]]]:
    """context -> (start, end) of the product's window around each of its sentences (`qa.windows.window_span`,
    split as the index splits releases)."""
    from index.annotate import annotate

    from ..windows import window_span

    out = {}
    for ctx, a in zip(contexts, annotate(contexts)):
        rows = a.sentences
        out[ctx] = [(rows[lo][0], rows[hi][1]) for lo, hi in (window_span(i, len(rows)) for i in range(len(rows)))]
    return out


def groups(examples: list[Example], size: int, seed: int, negative_share: float = 0.15,
           corpus: list[str] | None = None) -> list[Group]:
    """One group of `size` windows per question: the window around its answer's sentence (if any) and the
    windows of `corpus` (paragraphs; default: the examples' own) that BM25 ranks highest for the question
    without holding the answer.
    `negative_share` of the answerable questions get a group without their answer window, labelled no-answer:
    at query time the answer is not always among the windows read."""
    import bm25s
    import numpy as np

    rng = random.Random(seed)
    contexts = sorted({e.context for e in examples} | set(corpus or ()))
    spans = paragraph_windows(contexts)
    flat = [(ctx, s, e) for ctx in contexts for s, e in spans[ctx]]
    texts = [ctx[s:e] for ctx, s, e in flat]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    k = min(size + 8, len(flat))
    hits, _ = retriever.retrieve(bm25s.tokenize([e.question for e in examples], stopwords="en", show_progress=False),
                                 k=k, show_progress=False, n_threads=1)
    out = []
    for ex, row in zip(examples, np.asarray(hits)):
        a0, a1 = ex.start, ex.start + len(ex.answer)
        answer_window = None
        if ex.start >= 0:
            inside = [(s, e) for s, e in spans[ex.context] if s <= a0 and a1 <= e]
            if not inside:
                continue
            s, e = min(inside, key=lambda w: abs((w[0] + w[1]) / 2 - (a0 + a1) / 2))
            answer_window = Window(ex.context[s:e], a0 - s, ex.answer)
        needle = ex.answer.casefold()
        distractors = []
        for i in row:
            ctx, s, e = flat[int(i)]
            if ex.start >= 0 and ((ctx == ex.context and s < a1 and e > a0) or needle in texts[int(i)].casefold()):
                continue
            distractors.append(Window(texts[int(i)]))
        if answer_window is not None and rng.random() >= negative_share:
            wins = [answer_window] + distractors[:size - 1]
        else:
            wins = distractors[:size]
        if len(wins) < 2:
            continue
        order = list(range(len(wins)))
        rng.shuffle(order)
        answer = order.index(0) if wins[0] is answer_window else -1
        out.append(Group(ex.source, ex.question, tuple(wins[i] for i in order), answer))
    return out


# -- groups as a file -------------------------------------------------------------
def save_groups(path: Path, groups: list[Group], header: dict) -> Path:
    """Write training groups as xz-compressed JSON lines, `header` (held-out units, the pool's hash) first:
    what a machine without the sources or spaCy and BM25 (a lent GPU) trains from (`train --groups`)."""
    import lzma

    from index.files import write_atomic

    lines = [json.dumps(header, ensure_ascii=False)]
    lines += [json.dumps([g.source, g.question, g.answer, [[w.text, w.start, w.answer] for w in g.windows]],
                         ensure_ascii=False) for g in groups]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lzma.compress(("\n".join(lines) + "\n").encode("utf-8")))
    return path


def load_groups(path: Path) -> tuple[dict, list[Group]]:
    """(header, groups) of a file written by `save_groups`."""
    import lzma

    with lzma.open(path, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        out = [Group(s, q, tuple(Window(*w) for w in ws), a) for s, q, a, ws in map(json.loads, f)]
    return header, out
