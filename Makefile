# scene2world: the two commands of the README, each starting from a bare Debian machine.
#   make demo   runs the whole pipeline on the bundled example
#   make test   runs lint, type checks and the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := libegl1 libgl1 libgl1-mesa-dri
export PYOPENGL_PLATFORM ?= egl
export PYGLET_HEADLESS ?= 1
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export PREFECT_HOME ?= $(CURDIR)/.scene2world/prefect

.PHONY: demo test lint typecheck unit bench setup system clean

demo: $(STAMP)
	$(BIN)/scene2world run --config configs/default.yaml

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check scene2world tests benchmarks scripts
	$(BIN)/ruff format --check scene2world tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy scene2world

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_render.py

setup: $(STAMP)

# System libraries for headless EGL (Mesa llvmpipe); installed only when missing.
system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# pyrender comes from pyproject.toml's dependencies (the pyrender2 fork, docs/install.md). A
# pyrender 0.1.45 left by an older setup provides the same `pyrender` module: remove it first.
$(STAMP): pyproject.toml constraints.txt | system
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip uninstall -q -y pyrender 2>/dev/null || true
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,dask]'
	touch $(STAMP)

clean:
	rm -rf .scene2world runs
