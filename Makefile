# sip-rtmp-bridge: make run | make test | make demo
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= conf/bridge.toml

.PHONY: run test unit e2e demo lint bench fuzz soak .system-run .system-test .system-bench install-service clean

# setup.py builds the media's compiled fast path (rtp/_fast.c) into the package.
$(VENV)/.installed: pyproject.toml setup.py rtp/_fast.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

CONSOLE_TESTS := tests/console
$(CONSOLE_TESTS)/node_modules/.installed: $(CONSOLE_TESTS)/package-lock.json
	cd $(CONSOLE_TESTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.system-run:
	./scripts/install-system-deps.sh run

.system-test:
	./scripts/install-system-deps.sh test

.system-bench:
	./scripts/install-system-deps.sh bench

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

run: .system-run $(VENV)/.installed
	$(VENV)/bin/sip-rtmp-bridge --config $(CONFIG)

# Three processes (pytest-xdist), each test file on one of them with its own peers: most tests wait
# on peers, not on the CPU. Ports come from a block per process below the kernel's ephemeral range
# (tests/support/ports.py), so nothing else can take one between its choice and its bind.
TEST_WORKERS ?= 3
# The media and RTP unit tests run a second time on the Python reference path alone (BRIDGE_FAST_PATH=0:
# as where the compiled path, rtp/_fast.c, could not be built).
test: .system-test $(VENV)/.installed $(CONSOLE_TESTS)/node_modules/.installed
	$(PY) -m pytest -q -rs -W ignore::DeprecationWarning -n $(TEST_WORKERS) --dist loadfile
	BRIDGE_FAST_PATH=0 $(PY) -m pytest -q -W ignore::DeprecationWarning -n $(TEST_WORKERS) tests/unit/media tests/unit/rtp

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit -W ignore::DeprecationWarning

e2e: .system-test $(VENV)/.installed $(CONSOLE_TESTS)/node_modules/.installed
	$(PY) -m pytest -q -s tests/e2e

demo: .system-test $(VENV)/.installed
	$(PY) -m tests.support.demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

# A capacity ramp with ffmpeg-per-call at 100 and 200 calls (~15 min), where the media worker's
# time goes at 100 calls (~3 min) and one tick alone on both paths (~10 s), what a slate and a second destination cost (bridge vs
# ffmpeg-per-call, ~15 min), the AAC coders' CPU against speech quality (~2 min), a video call
# against an audio-only one (~3 min), what a cluster costs its Redis (~2 min), then one call's setup latency.
bench: .system-bench $(VENV)/.bench-installed
	$(PY) -m bench.capacity --ramp 100,200,300 --seconds 30 --baseline-calls 100,200 --json bench-capacity.json
	$(PY) -m bench.stages --calls 100 --seconds 30
	$(PY) -m bench.tick --rate 16000 --ticks 3000
	$(PY) -m bench.outputs --calls 50 --seconds 30 --rounds 3 --json bench-outputs.json
	$(PY) -m bench.coder --rate 16000 --bitrate 32000
	$(PY) -m bench.video_call --seconds 20 --rounds 3
	$(PY) -m bench.ingest --calls 100 --seconds 30 --rounds 3
	$(PY) -m bench.cluster_redis --nodes 3 --calls 60 --seconds 20
	$(PY) -m bench.cluster_redis --nodes 6 --calls 60 --seconds 20
	$(PY) -m bench.one_call

# The fuzz properties of tests/fuzz with a long budget (make test runs them with 150 examples each).
FUZZ_EXAMPLES ?= 20000
fuzz: $(VENV)/.installed
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -s tests/fuzz -W ignore::DeprecationWarning

# 50 concurrent calls of 2 minutes, replaced as they end, for 30 minutes (about 750 calls) through a
# bad network: memory and open-file slopes, sockets, tasks, history and streams at the end.
SOAK_ARGS ?= --calls 50 --call-seconds 120 --minutes 30
soak: .system-test $(VENV)/.installed
	$(PY) -m bench.soak $(SOAK_ARGS) --json soak.json

PREFIX ?= /opt/sip-rtmp-bridge
install-service: .system-run
	id -u sip-rtmp-bridge >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin sip-rtmp-bridge
	mkdir -p $(PREFIX) /etc/sip-rtmp-bridge
	cp -r pyproject.toml README.md bridge rtp rest $(PREFIX)/
	$(PYTHON) -m venv $(PREFIX)/.venv
	$(PREFIX)/.venv/bin/pip install -q $(PREFIX)
	[ -f /etc/sip-rtmp-bridge/bridge.toml ] || cp conf/bridge.toml /etc/sip-rtmp-bridge/bridge.toml
	cp systemd/sip-rtmp-bridge.service /etc/systemd/system/
	systemctl daemon-reload
	@echo "edit /etc/sip-rtmp-bridge/bridge.toml, then: systemctl enable --now sip-rtmp-bridge"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
