"""Grid-search ranking weights on SQuAD 2.0 (question vectors cached, so each setting is cheap).

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

emb.encode_query = lru_cache(maxsize=None)(emb.encode_query)

#: each entry: (weights dict, key, values to try)
GRID = [
    (confidence.SPAN_WEIGHTS, "typed", [0.25, 0.4, 0.5]),
    (retrieve.SENTENCE_WEIGHTS, "novelty", [0.1, 0.2]),
]


def main() -> int:
    items, files = ev.load_squad(Path(sys.argv[1]))
    a = asst.Assistant(ev.squad_index(files))
    for values in itertools.product(*(vals for _, _, vals in GRID)):
        for (weights, name, _), v in zip(GRID, values):
            weights[name] = v
        m = ev.metrics(ev.run(a, items), a.threshold)
        print(dict(zip((n for _, n, _ in GRID), values)),
              {k: m[k] for k in ("release_at_1", "evidence_hit", "f1_all_spans")}, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
