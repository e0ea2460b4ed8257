"""Fit the evidence-ranking weights (qa.confidence.rank_weights()) on SQuAD 2.0 answerable questions.

    python scripts/fit_ranker.py ../shared/data/squad2_dev_subset.json

For each question, the retrieved candidate sentences get their features (as the assistant computes
them); a listwise softmax model learns which candidate holds a gold answer. Reports evidence-at-1 with
the current weights and with weights fitted on the other articles (article-wise cross-validation, so
the figure is not measured on what was fitted), then prints weights fitted on all articles.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import index.embedder as emb  # noqa: E402
from qa import assistant as asst, confidence, eval as ev  # noqa: E402
from qa.question import analyse  # noqa: E402

emb.encode_query = lru_cache(maxsize=None)(emb.encode_query)
WEIGHTS = confidence.rank_weights()
KEYS = list(WEIGHTS)


def collect(a, items):
    g = a._current()
    data = []
    for it in items:
        q = analyse(it.question)
        cands, _ = g.retriever.candidates(emb.encode_query(it.question), q)
        feats, labels = [], []
        for cand, span in asst.evidence_spans(g.data, g.retriever, q, cands):
            ref = cand.sent
            rel = g.data.releases[ref.release_id]
            f = confidence.rank_features(cand, span, q)
            feats.append([f[k] for k in KEYS])
            text = ev.normalize_answer(rel.text[ref.start:ref.end])
            labels.append(any(ev.normalize_answer(gd) in text for gd in it.answers))
        data.append((np.array(feats), np.array(labels, dtype=float), it.releases[0].split(" (")[0]))
    return data


def accuracy(data, w):
    return np.mean([y[np.argmax(X @ w)] for X, y, _ in data if len(y)])


def fit(data, steps=4000, lr=0.3, l2=1e-3):
    w = np.array([WEIGHTS[k] for k in KEYS], dtype=float)
    usable = [(X, y) for X, y, _ in data if y.any()]
    for _ in range(steps):
        grad = np.zeros_like(w)
        for X, y in usable:
            z = X @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            target = y / y.sum()
            grad += X.T @ (p - target)
        w -= lr * (grad / len(usable) + l2 * w)
    return w


def main() -> int:
    items, files = ev.load_squad(Path(sys.argv[1]))
    a = asst.Assistant(ev.squad_index(files))
    data = collect(a, [i for i in items if i.answers])
    w0 = np.array([WEIGHTS[k] for k in KEYS])
    print(f"evidence at 1, current weights: {accuracy(data, w0):.4f}")
    articles = sorted({d[2] for d in data})
    hits = []
    for art in articles:
        w = fit([d for d in data if d[2] != art])
        test = [d for d in data if d[2] == art]
        hits += [y[np.argmax(X @ w)] for X, y, _ in test if len(y)]
    print(f"evidence at 1, weights fitted on the other articles (leave-one-article-out): {np.mean(hits):.4f}")
    w = fit(data)
    print("weights fitted on all:", {k: round(float(v), 3) for k, v in zip(KEYS, w)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
