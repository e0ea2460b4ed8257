# Everything runs from the project's own virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SHARED := ../shared/data

.PHONY: install browser index run test eval bench bench-index bench-scale train-reader calibrate clean

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

# Fine-tune the reader on ../shared/data/squad_train_pool.json in the four rounds the shipped one had
# (whole paragraphs at 8e-5, again at 4e-5, then the product's sentence windows, then those with hard
# negatives), then fit its calibration on the held-out pool articles. About 2.5 hours on 2 CPU cores;
# checkpoints in .train/, resumed when interrupted; a GPU is used when present.
TRAIN := $(BIN)/python -m qa.training.train
WINDOWS := --data windows --paragraph-share 0.3 --warmup 0.06
train-reader: install
	$(TRAIN) --work .train/round1 --out .train/reader-round1 --max-steps 850
	$(TRAIN) --init .train/reader-round1 --work .train/round2 --out .train/reader-round2 --max-steps 450 --lr 4e-5
	$(TRAIN) --init .train/reader-round2 --work .train/round3 --out .train/reader-round3 $(WINDOWS) --epochs 1.5 --lr 3e-5
	$(TRAIN) --init .train/reader-round3 --work .train/round4 $(WINDOWS) --hard-negatives 1 --epochs 1.0 --lr 2e-5
	$(BIN)/python -m qa.training.calibrate

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
