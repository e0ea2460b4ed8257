"""Calibrated confidence: how likely the chosen span answers the question, in [0, 1].

A logistic model over a few retrieval and extraction signals; its weights were fitted
on an outside benchmark (SQuAD 2.0 dev, see `python -m qa.eval --calibrate`), and the
threshold is the point below which the assistant abstains.
"""
from __future__ import annotations

import math

#: weight of the span's own score when choosing among candidate sentences
SPAN_WEIGHT = 0.1

#: logistic weights over features(); refitted with `python -m qa.eval FILE --calibrate`
WEIGHTS = {"bias": -4.0, "cosine": 3.0, "lexical": 4.0, "passage": 0.5, "span": 0.5, "typed": 0.5}
THRESHOLD = 0.5


def features(cand, span, q) -> dict[str, float]:
    return {
        "cosine": cand.cosine,
        "lexical": cand.lexical,
        "passage": cand.passage,
        "span": span.score if span else -1.0,
        "typed": 1.0 if span is not None and span.typed else 0.0,
    }


def score(cand, span, q) -> float:
    f = features(cand, span, q)
    z = WEIGHTS["bias"] + sum(WEIGHTS[k] * v for k, v in f.items())
    return 1.0 / (1.0 + math.exp(-z))
