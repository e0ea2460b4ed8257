"""Calibrated confidence: how likely the chosen span answers the question, in [0, 1].

A logistic model over a few retrieval and extraction signals; its weights were fitted
on an outside benchmark (SQuAD 2.0 dev, see `python -m qa.eval --calibrate`), and the
threshold is the point below which the assistant abstains.
"""
from __future__ import annotations

import math

#: how the evidence sentence is chosen among the retrieved candidates once each has its best span:
#: the candidate's own signals (retrieve.SENTENCE_WEIGHTS) plus its span's score and whether the span
#: is of the kind asked for
SPAN_WEIGHTS = {"span": 0.1, "typed": 0.4}

#: wh-words whose answer type is certain ("who" wants a name); for "what <noun>" it is only likely
STRONG_TYPES = frozenset({"who", "when", "where", "how many", "how much"})


def rank_features(cand, span, q=None) -> dict[str, float]:
    typed = 0.0
    if span is not None and span.typed:
        typed = 1.0 if q is None or q.wh in STRONG_TYPES else 0.5
    return {**cand.features(), "span": span.score if span else -1.0, "typed": typed}


def rank_weights() -> dict[str, float]:
    """All the weights rank_score applies, by feature name."""
    from .retrieve import SENTENCE_WEIGHTS

    return {**SENTENCE_WEIGHTS, **SPAN_WEIGHTS}


def rank_score(cand, span, q=None) -> float:
    f = rank_features(cand, span, q)
    return sum(w * f[k] for k, w in rank_weights().items())


#: logistic weights over features(); refitted with `python -m qa.eval FILE --calibrate`
WEIGHTS = {"bias": -3.986, "cosine": 1.997, "dense": 0.157, "lexical": 1.19, "passage": -0.652, "span": 0.826,
           "typed": 0.222}
#: abstain below this. On SQuAD 2.0 (whose unanswerable questions are adversarial, on-topic ones) it
#: answers 95% of the answerable questions; questions about things the releases never mention score
#: far lower (0.02-0.07) and are refused.
THRESHOLD = 0.095


def features(cand, span, q) -> dict[str, float]:
    return {
        "cosine": cand.cosine,
        "dense": cand.dense,
        "lexical": cand.lexical,
        "passage": cand.passage,
        "span": span.score if span else -1.0,
        "typed": 1.0 if span is not None and span.typed else 0.0,
    }


def score(cand, span, q) -> float:
    f = features(cand, span, q)
    z = WEIGHTS["bias"] + sum(WEIGHTS[k] * v for k, v in f.items())
    return 1.0 / (1.0 + math.exp(-z))
