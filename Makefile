# Set-up and everyday commands. `make run` and `make test` work on a fresh machine:
# they create .venv, install the system packages the GUI tests need, and install wmstudio.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_SPEC ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
endif

.PHONY: run demo test lint bench sysdeps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

sysdeps:
	@bash scripts/sysdeps.sh

## The built-in demo: embed -> fine-tune -> restore on the bundled digits data set.
run: $(STAMP)
	$(BIN)/wmstudio demo --out runs/demo.h5

demo: run

## The whole test suite (what .ci/run calls).
test: $(STAMP) sysdeps
	$(BIN)/ruff check wmstudio tests benchmarks
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data_path.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
