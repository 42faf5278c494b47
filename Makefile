# sse-vs-ws — every target sets up what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT_SSE ?= 8081
PORT_WS  ?= 8082
PYTEST_ARGS ?=

.PHONY: setup system-deps bench test lint serve-sse serve-ws serve-ws-websockets clean-venv perf

setup: system-deps $(STAMP)

# A real nginx for the proxy scenarios and tests (issue 6). No-op when one is found
# ($SSEVSWS_NGINX, PATH, /usr/sbin/nginx). As root: install nginx-light (or nginx when this
# release has no nginx-light) with a policy-rc.d that keeps the system service from starting.
# Otherwise: say the proxy scenarios and tests will be skipped, and succeed.
system-deps:
	@if { [ -n "$$SSEVSWS_NGINX" ] && [ -x "$$SSEVSWS_NGINX" ]; } \
		|| command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "nginx not found; proxy scenarios and tests will be skipped (install nginx-light as root)"; \
		exit 0; \
	fi; \
	prc=/usr/sbin/policy-rc.d; made_prc=0; \
	if [ ! -e $$prc ]; then printf '#!/bin/sh\nexit 101\n' > $$prc && chmod 755 $$prc && made_prc=1; fi; \
	ok=0; \
	if apt-get update -qq; then \
		pkg=nginx-light; \
		apt-cache policy nginx-light 2>/dev/null | grep -q 'Candidate: [0-9]' || pkg=nginx; \
		echo "installing $$pkg (system service not started)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkg && ok=1; \
	fi; \
	if [ $$made_prc = 1 ]; then rm -f $$prc; fi; \
	if [ $$ok = 1 ]; then { command -v nginx >/dev/null && nginx -v; } || /usr/sbin/nginx -v; \
	else echo "nginx not found; proxy scenarios and tests will be skipped (install nginx-light as root)"; fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Issue 4: the default suite (≤ 10 min after setup) → results/<run>/report.html.
# QUICK=1: the ~2-minute smoke suite; SUITE=name|path.toml picks another suite.
SUITE ?=
bench: setup
	$(BIN)/ssevsws bench $(if $(QUICK),--quick,) $(if $(SUITE),--suite $(SUITE),)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

serve-sse: setup
	$(BIN)/ssevsws serve sse --port $(PORT_SSE)

serve-ws: setup
	$(BIN)/ssevsws serve ws --port $(PORT_WS)

serve-ws-websockets: setup
	$(BIN)/ssevsws serve ws-websockets --port $(PORT_WS)

# Issue 7: the harness measured against raw asyncio, sse-starlette and websockets defaults.
# QUICK=1 runs the scaled-down version (a few minutes). Installs the perf extra first.
QUICK ?=
perf: setup
	$(BIN)/python -m pip install --quiet -e '.[dev,perf]'
	$(BIN)/ssevsws perf $(if $(QUICK),--quick,)

# Issue 4: the run report. `make report RUN=results/<run>` executes notebooks/report.ipynb
# headless → report.html, report.md, figures/, summary.json in the run folder.
# `make notebooks` installs the notebooks extra (a Jupyter server) on demand and opens notebooks/.
.PHONY: notebooks report
RUN ?= results/latest
NB_PORT ?= 8888
report: setup
	$(BIN)/ssevsws report $(RUN)

notebooks: setup
	@$(BIN)/python -c "import notebook" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	$(BIN)/jupyter notebook --port=$(NB_PORT) notebooks/

clean-venv:
	rm -rf $(VENV)
