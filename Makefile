# sse-vs-ws — every target sets up what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT_SSE ?= 8081
PORT_WS  ?= 8082
PYTEST_ARGS ?=

.PHONY: setup system-deps bench sample sample-one test lint serve-sse serve-ws serve-ws-websockets clean-venv perf

setup: system-deps $(STAMP)

# System tools the experiments run for real: nginx for the proxy scenarios and tests
# (issue 6), Debian's chromium for the browser check of C7 (bench/browser.py). No-op for a
# tool that is found (nginx: $$SSEVSWS_NGINX, PATH, /usr/sbin/nginx; chromium:
# $$SSEVSWS_CHROMIUM, PATH). As root: apt-get install what is missing (nginx-light, or nginx
# when this release has none; chromium) with a policy-rc.d that keeps the nginx service
# from starting. Otherwise: say which scenarios and tests will be skipped, and succeed.
system-deps:
	@need=""; \
	if ! { { [ -n "$$SSEVSWS_NGINX" ] && [ -x "$$SSEVSWS_NGINX" ]; } \
		|| command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }; then need="nginx"; fi; \
	if ! { { [ -n "$$SSEVSWS_CHROMIUM" ] && [ -x "$$SSEVSWS_CHROMIUM" ]; } \
		|| command -v chromium >/dev/null 2>&1; }; then need="$$need chromium"; fi; \
	[ -z "$$need" ] && exit 0; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "not found:$$need — proxy scenarios/tests (nginx) and the browser check (chromium) will be skipped; install them as root"; \
		exit 0; \
	fi; \
	prc=/usr/sbin/policy-rc.d; made_prc=0; \
	if [ ! -e $$prc ]; then printf '#!/bin/sh\nexit 101\n' > $$prc && chmod 755 $$prc && made_prc=1; fi; \
	pkgs=""; \
	if apt-get update -qq; then \
		case "$$need" in *nginx*) \
			pkg=nginx-light; \
			apt-cache policy nginx-light 2>/dev/null | grep -q 'Candidate: [0-9]' || pkg=nginx; \
			pkgs="$$pkg";; esac; \
		case "$$need" in *chromium*) pkgs="$$pkgs chromium";; esac; \
		echo "installing$$pkgs (system services not started)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs \
			|| echo "apt-get install$$pkgs failed: the scenarios and tests that need them will be skipped"; \
	fi; \
	if [ $$made_prc = 1 ]; then rm -f $$prc; fi; \
	{ command -v nginx >/dev/null && nginx -v; } || { [ -x /usr/sbin/nginx ] && /usr/sbin/nginx -v; } \
		|| echo "nginx not found; proxy scenarios and tests will be skipped"; \
	command -v chromium >/dev/null && chromium --version 2>/dev/null \
		|| echo "chromium not found; the browser check of C7 will be skipped"

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

# The committed sample, regenerated in one command: the default suite on this machine
# (~10 min) into $(SAMPLE_RUNS), then published into results/sample (index.html,
# runs/<run>/report.html with figures, tables/*.csv, summary.json, manifest.json, the
# methodology page) with the machine's load average before and after the run noted.
# Then the formats suite (~8 min: provider formats, TLS, agent chains) the same way into
# results/sample/formats. Replaces what the previous sample publish wrote; other folders
# there (perf/, faultproxy/) are left alone.
SAMPLE_RUNS ?= results/sample-runs
sample: setup
	@$(MAKE) --no-print-directory sample-one SAMPLE_SUITE=default SAMPLE_OUT=results/sample
	@$(MAKE) --no-print-directory sample-one SAMPLE_SUITE=formats SAMPLE_OUT=results/sample/formats

sample-one:
	@before="$$(cut -d' ' -f1-3 /proc/loadavg)"; \
	$(BIN)/ssevsws bench --suite $(SAMPLE_SUITE) --results $(SAMPLE_RUNS) --no-report || exit $$?; \
	after="$$(cut -d' ' -f1-3 /proc/loadavg)"; \
	$(BIN)/ssevsws publish $(SAMPLE_RUNS)/latest --out $(SAMPLE_OUT) --force \
		--note "machine load average (1, 5, 15 min): $$before when the run started, $$after when it ended"

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
