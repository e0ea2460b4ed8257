"""Fit the reader's calibration on the training pool's held-out articles, and store it with the reader.

    python -m qa.training.calibrate [--reader DIR] [--pool FILE] [--dry-run]

The held-out articles (named in reader.json by `python -m qa.training.train`) become a corpus, less a
share of their paragraphs whose questions are then asked as ones the corpus cannot answer; every
question is asked end to end and every window the reader read is kept. Then, on those
readings only: the rank weights that pick the best window (most F1), a logistic model of
"the chosen span is right", the abstention threshold (best overall SQuAD 2.0 F1 with
abstentions counted right on unanswerable questions, among thresholds that still answer
MIN_ANSWERED of the answerable ones) and the labels' cut-offs (the share of answers right at
or above a score). The dev files are never read here.
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config
from ..calibration import Calibration
from .eval import Item, answering_threshold, best_over, f1_score, separation, squad_index, squad_items

#: the operating point answers at least this share of answerable held-out questions: a press
#: office's users ask mostly answerable questions, and a refusal of one costs as much as a wrong answer
MIN_ANSWERED = 0.90
#: the share of answers right (F1 >= 0.5) that each label promises, from its cut-off up
LABEL_PRECISION = {"confident": 0.8, "likely": 0.5}
#: answers per bin of the fit the labels' cut-offs are read from
LABEL_MIN_ANSWERS = 20
FEATURES = ("margin", "span", "null", "retrieval", "cosine", "lexical", "missing")
RANK_GRID = {"retrieval": (0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 40.0), "cosine": (0.0, 1.0, 2.0, 4.0, 6.0, 8.0),
             "missing": (0.0, -1.0, -2.0, -4.0)}
#: windows per question tried; the fewest within WINDOWS_TOLERANCE of the best F1 is kept (fewer is faster)
WINDOW_CHOICES = (2, 4, 6, 8)
#: held-out questions asked (of about 2,900), as the shipped reader was: about 2 a second on 2 cores in bf16
CALIBRATION_QUESTIONS = 800
WINDOWS_TOLERANCE = 0.005
#: share of the held-out paragraphs left out of the corpus, their questions asked as unanswerable: the kind a
#: press office's users ask most (about a detail or a subject no release mentions), which SQuAD 2.0's
#: unanswerable questions (their paragraph is there, the answer is not) do not teach the score
LEFT_OUT_PARAGRAPHS = 0.15
#: a left-out question whose answer (this long or longer) the corpus still holds verbatim is not asked
LEAKED_ANSWER_CHARS = 4


@dataclass
class Asked:
    """One held-out question: its gold answers and, per window read, the features and the span's text."""

    answers: list[str]
    readings: list[tuple[dict, str]]
    f1: list[float] | None = None  # of each reading's span; scored once, when not given

    def __post_init__(self) -> None:
        if self.f1 is None:
            self.f1 = [best_over(f1_score, text, self.answers) if self.answers else 0.0 for _, text in self.readings]

    def first(self, n: int) -> "Asked":
        """The question as if only its first `n` windows had been read (a shared reader's no-answer score is
        made again from those windows alone)."""
        keep = [i for i, (f, _) in enumerate(self.readings) if f.get("position", 0) < n]
        return Asked(self.answers, renormalised([self.readings[i] for i in keep]), [self.f1[i] for i in keep])


def renormalised(readings: list[tuple[dict, str]]) -> list[tuple[dict, str]]:
    """The readings with the question's null and margins made again from these windows only."""
    if not readings or "cls_start" not in readings[0][0]:
        return readings
    from ..reader import joint_null

    null = joint_null([f["cls_start"] for f, _ in readings], [f["cls_end"] for f, _ in readings])
    return [({**f, "null": null, "margin": f["span"] - null}, t) for f, t in readings]


def ask_all(assistant, items) -> list[Asked]:
    from tqdm import tqdm

    out = []
    for it in tqdm(items, desc="held-out questions", unit="q"):
        _, trace = assistant.ask_traced(it.question)
        out.append(Asked(it.answers, trace.get("readings", [])))
    return out


def chosen(asked: Asked, rank: dict[str, float]) -> int | None:
    """Index of the reading the rank weights pick, None when nothing was read."""
    if not asked.readings:
        return None
    score = Calibration(rank=rank).rank_score
    return max(range(len(asked.readings)), key=lambda i: score(asked.readings[i][0]))


def fit_rank(data: list[Asked]) -> tuple[dict[str, float], float]:
    """Rank weights (margin fixed at 1) with the best mean F1 of the chosen span on answerable questions."""
    ans = [a for a in data if a.answers]
    best, best_f1 = {"margin": 1.0}, -1.0
    for combo in itertools.product(*RANK_GRID.values()):
        rank = {"margin": 1.0, **dict(zip(RANK_GRID, combo))}
        f1 = float(np.mean([a.f1[i] if (i := chosen(a, rank)) is not None else 0.0 for a in ans]))
        if f1 > best_f1 + 1e-9:
            best, best_f1 = rank, f1
    return {k: v for k, v in best.items() if v}, best_f1


def fit_windows(data: list[Asked], max_windows: int | None = None) -> tuple[int, dict[str, float], float, dict[int, float]]:
    """The fewest windows per question that do as well as reading them all (at most `max_windows`: the
    speed budget), with their rank weights."""
    fits = {n: fit_rank([a.first(n) for a in data]) for n in WINDOW_CHOICES if max_windows is None or n <= max_windows}
    top = max(f1 for _, f1 in fits.values())
    n = min(n for n, (_, f1) in fits.items() if f1 >= top - WINDOWS_TOLERANCE)
    return n, fits[n][0], fits[n][1], {k: round(f1, 4) for k, (_, f1) in fits.items()}


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Weights (bias first) of an L2-regularised logistic regression fitted on standardised features,
    returned in raw units (so the product scores without a scaler)."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:  # every answer right (or none): the score is that rate, whatever the features
        rate = float(np.clip(np.mean(y), 1e-3, 1 - 1e-3))
        return np.r_[np.log(rate / (1 - rate)), np.zeros(X.shape[1])]
    mu, sd = X.mean(0), X.std(0) + 1e-9
    model = LogisticRegression(C=1.0 / (l2 * len(y)), max_iter=2000).fit((X - mu) / sd, y)
    raw = model.coef_[0] / sd
    return np.r_[float(model.intercept_[0]) - float(raw @ mu), raw]


def operating_point(p: np.ndarray, f1: np.ndarray, answerable: np.ndarray) -> tuple[float, list[tuple]]:
    """The threshold with the best overall F1 among those answering >= MIN_ANSWERED, and the whole curve."""
    curve = []
    for t in np.unique(np.round(p, 4)):
        said = p >= t
        overall = np.where(answerable, np.where(said, f1, 0.0), (~said).astype(float)).mean()
        curve.append((float(t), float(said[answerable].mean()), float((~said[~answerable]).mean()), float(overall)))
    ok = [c for c in curve if c[1] >= MIN_ANSWERED] or curve[:1]
    return max(ok, key=lambda c: c[3])[0], curve


def refused_at(p: np.ndarray, answerable: np.ndarray, answered: float) -> float | None:
    """The share of unanswerable questions refused by the threshold that answers `answered` of the answerable."""
    if not answerable.any() or answerable.all():
        return None
    return round(float((p[~answerable] < answering_threshold(p[answerable], answered)).mean()), 4)


def right_rate_by_score(scored: list[tuple[float, bool]], bin_size: int = LABEL_MIN_ANSWERS) -> list[tuple[float, float]]:
    """(lowest score, share of answers right from it) in ascending steps: answers sorted by score are
    binned `bin_size` at a time, then fitted isotonically (weighted by bin size), so the share never
    falls as the score rises and no step rests on fewer than `bin_size` answers."""
    from sklearn.isotonic import IsotonicRegression

    ordered = sorted(scored)
    bins = [ordered[i:i + bin_size] for i in range(0, len(ordered), bin_size)]
    if len(bins) > 1 and len(bins[-1]) < bin_size:
        bins[-2].extend(bins.pop())
    if not bins:
        return []
    rates = np.array([sum(ok for _, ok in b) / len(b) for b in bins])
    fitted = IsotonicRegression().fit(np.arange(len(bins)), rates, sample_weight=[len(b) for b in bins]) \
        .predict(np.arange(len(bins)))
    # one step per run of bins the fit pooled, starting at the run's lowest score
    return [(bins[i][0][0], float(r)) for i, r in enumerate(fitted) if i == 0 or not np.isclose(r, fitted[i - 1])]


def label_cutoffs(scored: list[tuple[float, bool]], targets: dict[str, float] = LABEL_PRECISION,
                  min_answers: int = LABEL_MIN_ANSWERS) -> dict[str, float]:
    """For each label, the lowest score from which answers were right at least as often as its target,
    read off the isotonic fit (right_rate_by_score): the answers just above a cut-off meet the target,
    not only all of them on average. 1.0 when no score qualifies."""
    fit = right_rate_by_score(scored, min_answers)
    return {name: round(next((lo for lo, rate in fit if rate >= target), 1.0), 4) for name, target in targets.items()}


def fit(data: list[Asked], max_windows: int | None = None,
        fitted_on: str = "held-out training-pool articles") -> tuple[Calibration, dict]:
    windows, rank, rank_f1, by_windows = fit_windows(data, max_windows)
    data = [a.first(windows) for a in data]
    picks = [chosen(a, rank) for a in data]
    keep = [i for i, c in enumerate(picks) if c is not None]
    X = np.array([[data[i].readings[picks[i]][0].get(k, 0.0) for k in FEATURES] for i in keep], dtype=float)
    f1 = np.array([data[i].f1[picks[i]] for i in keep])
    answerable = np.array([bool(data[i].answers) for i in keep])
    right = (f1 >= 0.5) & answerable
    w = fit_logistic(X, right.astype(float))
    weights = {"bias": round(float(w[0]), 4), **{k: round(float(v), 4) for k, v in zip(FEATURES, w[1:])}}
    cal = Calibration(rank=rank, weights=weights)
    p = np.array([cal.probability(data[i].readings[picks[i]][0]) for i in keep])
    threshold, curve = operating_point(p, f1, answerable)
    cutoffs = label_cutoffs(list(zip(p.tolist(), right.tolist())))
    said = p >= threshold
    report = {"questions": len(data), "answerable": int(answerable.sum()), "rank_f1_all_answered": round(rank_f1, 4),
              "rank_f1_by_windows": by_windows,
              "answered_rate": round(float(said[answerable].mean()), 4),
              "refused_unanswerable": round(float((~said[~answerable]).mean()), 4),
              "f1_answerable": round(float(np.where(said, f1, 0)[answerable].mean()), 4),
              "overall_f1": round(float(np.where(answerable, np.where(said, f1, 0), ~said).mean()), 4),
              # what any threshold can reach: 0.5 would be a score that cannot tell the two kinds apart
              "answerable_separation": separation(p, answerable),
              "refused_unanswerable_at_85pct_answered": refused_at(p, answerable, 0.85),
              "curve": [tuple(round(x, 4) for x in c) for c in curve[:: max(1, len(curve) // 25)]]}
    return Calibration(rank, weights, round(threshold, 4), cutoffs, windows, fitted_on), report


def leave_out(data: dict, share: float = LEFT_OUT_PARAGRAPHS, seed: int = 13) -> tuple[dict, list[Item]]:
    """`data` without a random `share` of its paragraphs, and those paragraphs' questions as unanswerable
    items, less any whose answer the paragraphs kept still hold verbatim (they may be answerable there)."""
    rng = random.Random(seed)
    kept, gone = [], []
    for art in data["data"]:
        paras = []
        for p in art["paragraphs"]:
            if rng.random() < share:
                gone.extend(p["qas"])
            else:
                paras.append(p)
        if paras:
            kept.append({**art, "paragraphs": paras})
    text = "\n".join(p["context"] for art in kept for p in art["paragraphs"]).lower()
    leaked = lambda qa: any(len(a["text"]) >= LEAKED_ANSWER_CHARS and a["text"].lower() in text
                            for a in qa.get("answers", []))
    return {"data": kept}, [Item(qa["question"], [], []) for qa in gone if not leaked(qa)]


def held_out_data(pool: Path, units: dict[str, list[str]]) -> dict:
    """The held-out questions as SQuAD data: the units of each source the reader held out (reader.json's
    held_out_units)."""
    from .data import held_out_squad, load_examples

    held = [e for name, keep in units.items() for e in load_examples(name, pool.parent) if e.unit in set(keep)]
    return held_out_squad(held)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.training.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", type=Path, default=config.READER_DIR)
    parser.add_argument("--pool", type=Path, default=config.TRAIN_POOL)
    parser.add_argument("--dry-run", action="store_true", help="print the fit, do not write reader.json")
    parser.add_argument("--readings", type=Path, default=config.TRAIN_WORK_DIR / "calibration-readings.json",
                        help="where the held-out readings are kept (git-ignored), to refit with --reuse")
    parser.add_argument("--max-windows", type=int, default=None,
                        help="read at most this many windows per question (default: the precision's speed budget, "
                             "config.MAX_WINDOWS)")
    parser.add_argument("--reuse", action="store_true", help="refit on the kept readings instead of asking again")
    parser.add_argument("--sample", type=int, default=CALIBRATION_QUESTIONS,
                        help="ask this many held-out questions, drawn at random from every source (0: all)")
    args = parser.parse_args(argv)

    from ..assistant import Assistant
    from ..reader import Reader, ReaderError, precision_of, read_meta, write_meta

    try:
        meta = read_meta(args.reader)
        precision = precision_of(meta)
    except ReaderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    units = meta.get("held_out_units") or {}
    if not units:
        print("error: reader.json names no held-out units; retrain with `make train-reader`.", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    if args.reuse:
        kept = json.loads(args.readings.read_text(encoding="utf-8"))
        if kept.get("sha256") != meta.get("sha256") or kept.get("precision", config.READER_PRECISION) != precision:
            print("error: the kept readings are of another reader model or precision; run without --reuse.",
                  file=sys.stderr)
            return 2
        data = [Asked(a, [tuple(r) for r in rs]) for a, rs in kept["asked"]]
    else:
        corpus, left_out = leave_out(held_out_data(args.pool, units))
        items, files = squad_items(corpus)
        items += left_out
        if 0 < args.sample < len(items):
            items = random.Random(13).sample(items, args.sample)
        # read as many windows as calibration may choose from, whatever the reader's current setting
        assistant = Assistant(squad_index(files), reader=Reader(args.reader, precision), calibration=Calibration())
        data = ask_all(assistant, items)
        args.readings.parent.mkdir(parents=True, exist_ok=True)
        args.readings.write_text(json.dumps({"sha256": meta.get("sha256"), "precision": precision,
                                             "asked": [(a.answers, a.readings) for a in data]}), encoding="utf-8")
    cal, report = fit(data, args.max_windows or config.MAX_WINDOWS.get(precision),
                      f"{len(data)} questions of the held-out units of every training source, "
                      f"{LEFT_OUT_PARAGRAPHS:.0%} of their paragraphs left out of the corpus")
    report["seconds"] = round(time.perf_counter() - t0)
    print(json.dumps({"calibration": cal.to_dict(), **report}, indent=1))
    if not args.dry_run:
        # the fit holds for the precision the reader ran at (int8 and bf16 margins differ a little)
        meta["calibration"] = {**cal.to_dict(), "precision": precision,
                               "held_out": {k: v for k, v in report.items() if k != "curve"}}
        write_meta(args.reader, meta)
        print(f"calibration written to {args.reader / config.READER_META}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
