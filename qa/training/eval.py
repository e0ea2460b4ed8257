"""Score the assistant on a question file.

    python -m qa.training.eval ../shared/data/nato_dev.jsonl            # questions about the index's corpus
    python -m qa.training.eval ../shared/data/squad2_dev_subset.json    # SQuAD 2.0: its paragraphs become the corpus

Prints release accuracy at 1, evidence hit rate, EM/F1 of the short answer (SQuAD
normalisation), answered rate on answerable questions, abstention rate on unanswerable
ones, and follow-ups right.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import re
import string
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


# -- SQuAD scoring -----------------------------------------------------------
def normalize_answer(s: str) -> str:
    """Lower-case, strip punctuation and articles, collapse whitespace (the official SQuAD rule)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation) | {"’", "‘", "“", "”"})
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if not p or not g:
        return float(p == g)
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def best_over(fn, prediction: str, golds: list[str]) -> float:
    return max((fn(prediction, g) for g in golds), default=0.0)


def exact(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


# -- question files ----------------------------------------------------------
@dataclass
class Item:
    question: str
    answers: list[str]
    releases: list[str]  # gold release titles
    history: list[tuple[str, str]] = field(default_factory=list)


def load_jsonl(path: Path) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            hist = [(h["question"], (h.get("answers") or [""])[0]) for h in d.get("history") or []]
            items.append(Item(d["question"], d.get("answers", []), d.get("releases", []), hist))
    return items


def squad_title(article: str, i: int) -> str:
    return f"{article.replace('_', ' ')} ({i})"


def load_squad(path: Path) -> tuple[list[Item], dict[str, str]]:
    """SQuAD questions, and its paragraphs as releases (file name -> text in the one-release layout)."""
    return squad_items(json.loads(path.read_text(encoding="utf-8")))


_SAFE = re.compile(r"[^\w.-]+")  # what a file name keeps of an article's title


def squad_items(d: dict) -> tuple[list[Item], dict[str, str]]:
    """`load_squad` on SQuAD data already read."""
    items, files = [], {}
    for art in d["data"]:
        for i, p in enumerate(art["paragraphs"]):
            title = squad_title(art["title"], i)
            files[f"{_SAFE.sub('_', art['title'])}_{i:03d}.txt"] = f"{title}\n\n{p['context']}\n"
            for qa in p["qas"]:
                golds = [a["text"] for a in qa.get("answers", [])] if not qa.get("is_impossible") else []
                items.append(Item(qa["question"], golds, [title] if golds else []))
    return items, files


def squad_index(files: dict[str, str], cache: Path | None = None) -> Path:
    """Write the paragraphs as a corpus and build (or reuse) its index; returns the index folder."""
    from index.build import build_index

    key = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()[:12]
    root = (cache or Path(tempfile.gettempdir())) / f"qa-eval-squad-{key}"
    corpus = root / "corpus"
    if not corpus.exists():
        corpus.mkdir(parents=True)
        for name, text in files.items():
            (corpus / name).write_text(text, encoding="utf-8")
    report = build_index(corpus, root / "index")
    if report.chunks_embedded:
        print(f"built the SQuAD index: {report.chunks} chunks in {report.seconds:.0f} s", file=sys.stderr)
    return root / "index"


def gold_paragraph_scores(reader, data: dict) -> dict:
    """The reader alone on SQuAD: each answerable question read against its own paragraph, the best span
    always given (EM / F1), and on unanswerable ones how often the null score beats every span."""
    em, f1, null_right = [], [], []
    for art in data["data"]:
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                span = reader.read(qa["question"], [p["context"]])[0]
                text = p["context"][span.start:span.end] if span else ""
                golds = [a["text"] for a in qa.get("answers", [])] if not qa.get("is_impossible") else []
                if golds:
                    em.append(best_over(exact, text, golds))
                    f1.append(best_over(f1_score, text, golds))
                else:
                    null_right.append(span is None or span.margin < 0)
    return {"gold_paragraph_em": round(float(np.mean(em)), 4), "gold_paragraph_f1": round(float(np.mean(f1)), 4),
            "gold_paragraph_null_beats_span": round(float(np.mean(null_right)), 4) if null_right else None}


# -- running -----------------------------------------------------------------
@dataclass
class Row:
    item: Item
    text: str
    evidence: str
    answered: bool
    score: float
    top_title: str
    label: str = ""  # the word the answer was shown with (confident / likely / unsure)
    read_spans: list[str] = field(default_factory=list)  # the span the reader marked in each window it read


def said(row: Row, threshold: float) -> bool:
    """Whether the row's span is given as the answer at `threshold` (else the question is refused)."""
    return row.score >= threshold and bool(row.text)


def run(assistant, items: list[Item]) -> list[Row]:
    rows = []
    for it in items:
        a, trace = assistant.ask_traced(it.question, history=it.history or None)
        # the span is kept even when abstaining, to score what another threshold would give
        rows.append(Row(it, trace.get("span_text", ""), a.evidence, a.answered, a.score,
                        a.sources[0].title if a.sources else "", a.label, [t for _, t in trace.get("readings", [])]))
    return rows


def metrics(rows: list[Row], threshold: float) -> dict:
    ans = [r for r in rows if r.item.answers]
    un = [r for r in rows if not r.item.answers]
    hist = [r for r in ans if r.item.history]
    norm_in = lambda golds, ev: any(normalize_answer(g) and normalize_answer(g) in normalize_answer(ev) for g in golds)  # noqa: E731
    f1 = [best_over(f1_score, r.text if said(r, threshold) else "", r.item.answers) for r in ans]
    em = [best_over(exact, r.text if said(r, threshold) else "", r.item.answers) for r in ans]
    f1_said = [best_over(f1_score, r.text, r.item.answers) for r in ans if said(r, threshold)]
    m = {
        "questions": len(rows),
        "answerable": len(ans),
        "unanswerable": len(un),
        "release_at_1": np.mean([r.top_title in r.item.releases for r in ans if r.item.releases]) if ans else 0.0,
        "evidence_hit": np.mean([norm_in(r.item.answers, r.evidence) for r in ans]) if ans else 0.0,
        "em": np.mean(em) if em else 0.0,
        "f1": np.mean(f1) if f1 else 0.0,
        "f1_when_answered": np.mean(f1_said) if f1_said else 0.0,
        "f1_all_spans": np.mean([best_over(f1_score, r.text, r.item.answers) for r in ans]) if ans else 0.0,
        # a perfect choice among the windows read: what no ranking or threshold can go beyond with this reader
        "f1_best_read_span": np.mean([max((best_over(f1_score, t, r.item.answers) for t in r.read_spans), default=0.0)
                                      for r in ans]) if ans else 0.0,
        "answered_rate": np.mean([said(r, threshold) for r in ans]) if ans else 0.0,
        "abstention_rate": np.mean([not said(r, threshold) for r in un]) if un else 0.0,
        "abstained_unanswerable": int(sum(not said(r, threshold) for r in un)),
        "followups": len(hist),
        "followups_right": int(sum(said(r, threshold) and is_right(r)
                                   and (not r.item.releases or r.top_title in r.item.releases) for r in hist)),
    }
    return {k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in m.items()}


def answering_threshold(scores, answered_share: float, answerable: int | None = None) -> float:
    """The highest threshold that still answers `answered_share` of `answerable` questions (default: as many
    as `scores`, the scores of those that have a span)."""
    scores = sorted(scores, reverse=True)
    k = int(np.ceil(answered_share * (len(scores) if answerable is None else answerable))) - 1
    return float(scores[k]) if 0 <= k < len(scores) else 0.0


def threshold_for(rows: list[Row], answered_share: float) -> float:
    """The highest threshold that still answers `answered_share` of the answerable questions."""
    return answering_threshold([r.score for r in rows if r.item.answers and r.text], answered_share,
                               sum(1 for r in rows if r.item.answers))


def separation(scores, positive) -> float | None:
    """How often a positive's score is above a negative's (ties count half): the area under the ROC curve,
    0.5 for a score that tells the two apart no better than chance; None without both kinds."""
    from sklearn.metrics import roc_auc_score

    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return None
    return round(float(roc_auc_score(positive, np.asarray(scores, dtype=float))), 4)


def is_right(row: Row) -> bool:
    """The span of an answerable question matches a gold answer (F1 >= 0.5), as the calibration counts it."""
    return bool(row.item.answers) and best_over(f1_score, row.text, row.item.answers) >= 0.5


def label_report(rows: list[Row], threshold: float) -> dict[str, dict]:
    """How the answers given (score at or above `threshold`) fall into the labels they were shown
    with, surest first, and what share of each was right (F1 >= 0.5): a check of the cut-offs in use."""
    groups: dict[str, list[Row]] = collections.defaultdict(list)
    for r in rows:
        if said(r, threshold):
            groups[r.label].append(r)
    out = {}
    for name, group in sorted(groups.items(), key=lambda kv: -min(r.score for r in kv[1])):
        out[name] = {"answers": len(group), "lowest_score": round(min(r.score for r in group), 4),
                     "right_share": round(float(np.mean([is_right(r) for r in group])), 4)}
    return out


#: the figures the model card keeps for each question file
RECORDED = ("release_at_1", "evidence_hit", "em", "f1", "f1_best_read_span", "answered_rate", "abstention_rate",
            "abstained_unanswerable", "followups_right", "abstention_at_90pct_answered",
            "abstention_at_85pct_answered", "answerable_separation", "seconds_per_question", "gold_paragraph_em",
            "gold_paragraph_f1", "gold_paragraph_null_beats_span")


def record(model_dir: Path, name: str, m: dict) -> None:
    """Keep `m`'s main figures in the reader's reader.json and model card, under the question file's name."""
    from ..reader import read_meta, write_meta

    meta = read_meta(model_dir)
    meta.setdefault("eval", {})[name] = {k: m[k] for k in RECORDED if k in m}
    write_meta(model_dir, meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.training.eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a .jsonl question file or a SQuAD 2.0 .json file")
    parser.add_argument("--index", help="index folder for .jsonl files (default: the default index)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--labels", action="store_true",
                        help="check the confidence labels: how the answers given fall into them, and how many were right")
    parser.add_argument("--record", action="store_true",
                        help="record these figures in the reader's model card (reader.json and README.md)")
    parser.add_argument("--gold-paragraph", action="store_true",
                        help="SQuAD files: also score the reader alone, each question read against its own paragraph")
    parser.add_argument("--errors", type=int, default=0, help="print up to N wrong answers")
    args = parser.parse_args(argv)

    from index.errors import CorpusError, IndexStoreError

    from ..assistant import Assistant
    from ..reader import ReaderError

    try:
        if args.file.suffix == ".json":
            items, files = load_squad(args.file)
            index_dir = squad_index(files)
        else:
            items, index_dir = load_jsonl(args.file), args.index
        assistant = Assistant(index_dir)
    except (CorpusError, IndexStoreError, ReaderError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    titles = {r.title for r in assistant._current().data.releases.values()}
    missing = {t for it in items for t in it.releases if t not in titles}
    if missing:
        print(f"warning: {len(missing)} gold releases are not in the index {assistant.index_dir} "
              f"(e.g. {sorted(missing)[0]!r}); release and answer figures will be low.", file=sys.stderr)
    assistant.ask(items[0].question)  # warm-up
    t0 = time.perf_counter()
    rows = run(assistant, items)
    secs = time.perf_counter() - t0
    m = metrics(rows, assistant.threshold)
    m["seconds_per_question"] = round(secs / len(items), 4)
    for share in (90, 85):
        at = metrics(rows, threshold_for(rows, share / 100))
        m[f"abstention_at_{share}pct_answered"] = at["abstention_rate"]
        m[f"f1_at_{share}pct_answered"] = at["f1"]
    # how well the score tells the questions the corpus answers from those it does not: what any threshold can reach
    m["answerable_separation"] = separation([r.score for r in rows], [bool(r.item.answers) for r in rows])
    if args.gold_paragraph and args.file.suffix == ".json":
        m.update(gold_paragraph_scores(assistant.reader, json.loads(args.file.read_text(encoding="utf-8"))))
    if args.labels:
        m["labels_in_use"] = label_report(rows, assistant.threshold)
    if args.record:
        record(assistant.reader.model_dir, args.file.name, m)
    if args.json:
        print(json.dumps(m))
    else:
        print(f"{args.file.name}: {len(items)} questions ({m['answerable']} answerable, {m['unanswerable']} not)")
        for k, v in m.items():
            print(f"  {k:32s} {v}")
    wrong = [r for r in rows if (not is_right(r) if r.item.answers else said(r, assistant.threshold))]
    for r in wrong[:args.errors]:
        how = "answered" if said(r, assistant.threshold) else "refused"
        print(f"\nQ: {r.item.question}\n  gold: {r.item.answers[:2] or 'not in the corpus'}  best span: {r.text!r} "
              f"({r.score:.2f}, {how})\n  release: {r.top_title!r} gold {r.item.releases[:1]}"
              f"\n  evidence: {r.evidence[:200]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
