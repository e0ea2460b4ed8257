# Everything runs from the project's own virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SHARED := ../shared/data

.PHONY: install browser index run test eval bench bench-index bench-scale train-reader train-reader-round5 calibrate clean

install: $(VENV)/.installed

# torch is pinned and installed first so pip takes the CPU build from this machine's disk.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -q && apt-get install -y -q chromium) >/dev/null; } || echo "chromium is missing: install Debian's chromium package to run the browser tests"

index: install
	$(BIN)/python -m index build

run: install
	$(BIN)/python -m ui

test: install browser
	$(BIN)/python -m pytest -q

eval: install
	$(BIN)/python -m qa.training.eval $(SHARED)/nato_dev.jsonl
	$(BIN)/python -m qa.training.eval $(SHARED)/squad2_dev_subset.json
	$(BIN)/python -m qa.training.eval $(SHARED)/nato_natural_dev.jsonl --labels

# Fine-tune the reader in the five rounds the shipped one had, then fit its calibration on the held-out
# articles of every source. Rounds 1-4 (the pool's paragraphs, then its sentence windows, about 2.5 hours on
# 2 CPU cores) made the reader round 5 continued from; round 5 (`make train-reader-round5`, about 40 min
# here) trains on groups: each question of the pool and ../shared/data/extra/ with the windows retrieval
# brings up for it, under one softmax. Checkpoints in .train/, resumed when interrupted; a GPU when present.
TRAIN := $(BIN)/python -m qa.training.train
WINDOWS := --data windows --paragraph-share 0.3 --warmup 0.06
MIX := pool=4500,qed=5500,subjqa=2500,squadshifts_wiki=1800,squadshifts_reddit=1300,squadshifts_amazon=1300,covidqa=400
GROUPS := --data groups --mix $(MIX) --batch-size 8 --epochs 1 --max-steps 1350 --lr 3e-5 --warmup 0.06
train-reader: install
	$(TRAIN) --work .train/round1 --out .train/reader-round1 --max-steps 850
	$(TRAIN) --init .train/reader-round1 --work .train/round2 --out .train/reader-round2 --max-steps 450 --lr 4e-5
	$(TRAIN) --init .train/reader-round2 --work .train/round3 --out .train/reader-round3 $(WINDOWS) --epochs 1.5 --lr 3e-5
	$(TRAIN) --init .train/reader-round3 --work .train/round4 --out .train/reader-round4 $(WINDOWS) --hard-negatives 1 --epochs 1.0 --lr 2e-5
	$(TRAIN) --init .train/reader-round4 --work .train/round5 $(GROUPS)
	QA_READER_PRECISION=bf16 $(BIN)/python -m qa.training.calibrate --max-windows $(READ_WINDOWS)

# one session's round: continue from the reader of round 4 (sha256 7468297d..., in git history at e7fcf0f)
train-reader-round5: install
	mkdir -p .train/reader-round4
	git show e7fcf0f:qa/models/reader/model.safetensors > .train/reader-round4/model.safetensors
	git show e7fcf0f:qa/models/reader/config.json > .train/reader-round4/config.json
	git show e7fcf0f:qa/models/reader/reader.json > .train/reader-round4/reader.json
	$(TRAIN) --init .train/reader-round4 --work .train/round5 $(GROUPS)
	QA_READER_PRECISION=bf16 $(BIN)/python -m qa.training.calibrate --max-windows $(READ_WINDOWS)

#: windows a question reads (the speed budget: ask() p50 within 10x the question's encode; scripts/benchmark.py)
READ_WINDOWS ?= 6

calibrate: install
	$(BIN)/python -m qa.training.calibrate

bench: install
	$(BIN)/python scripts/benchmark.py

bench-index: install
	$(BIN)/python scripts/bench_index.py

# build, search and ask() at 10^3..10^6 chunks (real embeddings up to 10^4, synthetic vectors above)
bench-scale: install
	$(BIN)/python scripts/bench_scale.py

clean:
	rm -rf .index .pytest_cache  # .train/ (training checkpoints) is kept: remove it by hand
