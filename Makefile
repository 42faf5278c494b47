# sse-vs-ws — every target sets up what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT_SSE ?= 8081
PORT_WS  ?= 8082
PYTEST_ARGS ?=

.PHONY: setup test lint serve-sse serve-ws serve-ws-websockets clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

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

clean-venv:
	rm -rf $(VENV)
