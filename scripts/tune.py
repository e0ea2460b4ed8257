"""Grid-search the ranking weights on a question file (question vectors cached, so each setting is cheap).

    python scripts/tune.py ../shared/data/squad2_dev_subset.json
Tuning is done on the outside benchmark only; the NATO dev questions are kept for checking.
"""
from __future__ import annotations

import itertools
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import index.embedder as emb  # noqa: E402
from qa import assistant as asst, confidence, eval as ev, retrieve  # noqa: E402

_encode = emb.encode_query
emb.encode_query = lru_cache(maxsize=None)(_encode)

path = Path(sys.argv[1])
items, files = ev.load_squad(path)
a = asst.Assistant(ev.squad_index(files))
grid = {
    "SENTENCE_WEIGHTS": [(1.0, 0.8, 0.3)],
    "SPAN_WEIGHT": [0.1],
    "TYPED_BONUS": [0.0, 0.15, 0.3],
}
for sw, spw, tb in itertools.product(grid["SENTENCE_WEIGHTS"], grid["SPAN_WEIGHT"], grid["TYPED_BONUS"]):
    retrieve.SENTENCE_WEIGHTS, confidence.SPAN_WEIGHT, confidence.TYPED_BONUS = sw, spw, tb
    m = ev.metrics(ev.run(a, items), a.threshold)
    print(sw, spw, tb, {k: m[k] for k in ("release_at_1", "evidence_hit", "f1_all_spans")}, flush=True)
