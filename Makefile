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

.PHONY: run demo test test-cluster lint bench sysdeps screenshots clean dist package check-package

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

sysdeps:
	@bash scripts/sysdeps.sh

## The app, running the built-in demo (embed -> fine-tune -> restore on the bundled digits).
run: $(STAMP)
	$(BIN)/wmstudio-gui --demo --runs-dir runs

## The same demo headless, on the command line.
demo: $(STAMP)
	$(BIN)/wmstudio demo --out runs/demo.h5 --overwrite

## README screenshots of the real app, under Xvfb.
screenshots: $(STAMP) sysdeps
	xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb $(BIN)/python scripts/screenshots.py --out docs/images

## The whole test suite (what .ci/run calls): plain widgets offscreen (the `soak` long-session test
## included, ~25 s), the OpenGL view under Xvfb.
test: $(STAMP) sysdeps
	$(BIN)/ruff check wmstudio tests benchmarks scripts
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -ra -m "not gl and not cluster"
	xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb $(BIN)/python -m pytest -q -ra -m gl

## Sweeps and landscapes on a real two-node Ray cluster started with `ray start` on this machine, with
## the worker node killed mid-sweep and mid-landscape (3 to 5 min on 2 cores; not part of `make test`).
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m cluster tests/test_cluster.py

## The sdist and wheel (ui/ and resources/ inside), in dist/.
dist: $(STAMP)
	$(BIN)/python -m build --outdir dist .

## The standalone Linux app, both flavours (cuda, cpu), in packaging/dist/; then checked (see
## packaging/README.md: about 40 minutes and 15 GB of disk on the 2-core machine).
package:
	bash scripts/sysdeps.sh --package
	PY=$(PY) bash packaging/build.sh
	$(MAKE) check-package

check-package:
	for a in packaging/dist/wmstudio-*-linux-$(ARCH)-*.tar.gz; do bash packaging/check_bundle.sh $$a || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data_path.py
	$(BIN)/python benchmarks/bench_landscape.py
	$(BIN)/python benchmarks/bench_sweep.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/bench_gui_responsiveness.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache packaging/build packaging/dist packaging/.build-venv
