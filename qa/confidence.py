"""Calibrated confidence: how likely the chosen span answers the question, in [0, 1].

A logistic model over a few retrieval and extraction signals; its weights were fitted
on an outside benchmark (SQuAD 2.0 dev, see `python -m qa.eval --calibrate`), and the
threshold is the point below which the assistant abstains.
"""
from __future__ import annotations

import math

#: weight of the span's own score when choosing among candidate sentences
SPAN_WEIGHT = 0.1
#: bonus for a sentence holding the kind of thing asked for (a person for "who", a date for "when")
TYPED_BONUS = 0.15

#: logistic weights over features(); refitted with `python -m qa.eval FILE --calibrate`
WEIGHTS = {"bias": -3.992, "cosine": 2.22, "lexical": 1.282, "passage": -0.701, "span": 0.938, "typed": -0.027}
#: abstain below this: the confidence at which 90% of SQuAD's answerable questions are still answered
THRESHOLD = 0.11


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
