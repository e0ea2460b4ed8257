"""The one place for the answering stage's settings: the reader model, its windows, its files.

Numbers fitted on data (the no-answer threshold, how reader and retrieval scores combine, the
confidence labels' cut-offs) belong to a trained reader and live in its `reader.json`.
"""
from __future__ import annotations

import os
from pathlib import Path

from index.config import PROJECT_ROOT

#: the shipped reader: fp16 weights of everything but the word-piece table (shared with the bundled
#: embedding model), its settings, sha256 and calibration in reader.json, and a model card
READER_DIR = Path(os.environ.get("QA_READER_DIR") or Path(__file__).resolve().parent / "models" / "reader")
READER_WEIGHTS = "model.safetensors"
READER_META = "reader.json"
#: the one key of the encoder that is not stored: it is the bundled model's own table
SHARED_KEY = "bert.embeddings.word_embeddings.weight"

#: how the reader runs on the CPU: "int8" (dynamic, one scale per output channel), "bf16" or "fp32";
#: a reader runs at the precision its calibration was fitted at, this one when it names none
#: ($QA_READER_PRECISION overrides both); measured in qa/reader.py
READER_PRECISIONS = ("int8", "bf16", "fp32")
READER_PRECISION = "int8"
#: the most windows a question may read at each precision and keep ask() p50 within 10x the question's encode
#: on this 2-core CPU (scripts/benchmark.py); `python -m qa.training.calibrate` chooses the windows up to this
MAX_WINDOWS = {"int8": 8, "bf16": 6, "fp32": 4}

#: word pieces in a reader window (question + passage) and overlap when a passage is longer
READER_MAX_LENGTH = 256
READER_STRIDE = 96
#: sentences either side of a candidate sentence in a window the reader reads (training windows too)
WINDOW_NEIGHBOURS = 1
#: longest answer, in word pieces
MAX_ANSWER_PIECES = 30
#: windows the reader reads per question (one forward pass): calibration reads this many and keeps the
#: fewest that do as well (Calibration.windows)
N_WINDOWS = 8

#: training material (outside the product: only `python -m qa.training.train` reads it)
TRAIN_POOL = PROJECT_ROOT.parent / "shared" / "data" / "squad_train_pool.json"
#: checkpoints of a training run, git-ignored
TRAIN_WORK_DIR = PROJECT_ROOT / ".train"
#: whole articles of the pool kept out of training, to calibrate on
HOLDOUT_ARTICLES = 5
