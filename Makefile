# sip-rtmp-bridge: make run | make test | make demo
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= conf/bridge.toml

.PHONY: run test unit e2e demo lint typecheck bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

.system-run:
	./scripts/install-system-deps.sh run

.system-test:
	./scripts/install-system-deps.sh test

run: .system-run $(VENV)/.installed
	$(VENV)/bin/sip-rtmp-bridge --config $(CONFIG)

test: .system-test $(VENV)/.installed
	$(PY) -m pytest -q -rs -W ignore::DeprecationWarning

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit -W ignore::DeprecationWarning

e2e: .system-test $(VENV)/.installed
	$(PY) -m pytest -q -s tests/e2e

demo: .system-test $(VENV)/.installed
	$(PY) -m tests.support.demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: .system-test $(VENV)/.installed
	$(PY) -m bench.one_call

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
