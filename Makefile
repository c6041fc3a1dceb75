# Two entry points: `make demo` and `make test`. Both create .venv and install on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= runs/demo

.PHONY: install demo test test-experiments lint clean

# Python must cache bytecode: the suite and the demo start many interpreters (CLI tests, torchrun ranks,
# data-loader workers), and without the cache each one compiles torch and diffusers again (import
# torch + diffusers: 18.5 s against 7.3 s cached, `time python -c 'import torch, diffusers.models'`
# with and without it). Docker images often set this variable.
unexport PYTHONDONTWRITEBYTECODE

# --no-compile: byte-compiling all of torch at install took 27 s against 8 s without; Python compiles
# the modules it imports on first use instead.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q --no-compile -c constraints.txt -e '.[dev]'
	@# VBench's own code, for the test that checks our VBench-rule dimensions against it; --no-deps: its
	@# dependencies (torchvision among them) are not installed and the test loads only the modules it compares
	$(BIN)/python -m pip install -q --no-compile --no-deps vbench==0.1.5
	@# Chromium, for the test that opens the HTML report in a real browser (Debian's package, as root);
	@# elsewhere that test skips and says why
	-command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: the browser test will skip"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/motive demo --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the one-off experiment scripts' smoke modes (about 3 minutes; not part of `make test`)
test-experiments: $(STAMP)
	$(BIN)/python -m pytest -q -m experiments tests/test_experiments.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks experiments
	$(BIN)/ruff format --check src tests benchmarks experiments

clean:
	rm -rf $(VENV) runs .pytest_cache
