# bastion — `make help` lists the targets. CI (.ci/run) runs `make test`, exactly what developers run.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# One release build serves the tests and the benchmarks; `make dev BUILD=` gives a faster debug build.
BUILD ?= --release
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

# pyproject.toml holds the one dependency list: every extra is installed (tests, lint, peers, drivers).
# The extras are read from it rather than `pip install '.[...]'`, which would build the extension a second
# time; `make dev` builds it once with maturin.
EXTRAS := import tomllib; extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]; \
	print("\n".join(sorted({req for reqs in extras.values() for req in reqs})))
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip maturin
	$(PY) -c '$(EXTRAS)' > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	touch $@

.PHONY: dev
dev: $(VENV)/.deps ## build the extension into .venv (release by default) and install bastion
	$(VENV)/bin/maturin develop -q $(BUILD)

.PHONY: services
services: ## install redis-server and postgresql from Debian when missing (the tests start them)
	bash .ci/services.sh

.PHONY: test
test: services dev ## build, then run every test: Rust core unit tests and the Python suite (benches run once as tests)
	cargo test -q --release --no-default-features
	$(PY) -m pytest -q

.PHONY: demo
demo: dev ## build, then run the main job: the demo API under uvicorn, toured over HTTP (`python -m bastion demo --serve` keeps it up)
	$(PY) -m bastion demo

.PHONY: bench
bench: dev ## run the benchmarks against the peers (release build) and print the comparison
	$(PY) -m pytest benches --benchmark-enable --benchmark-only --benchmark-columns=median,ops,rounds --benchmark-sort=name -q

# wrk from Debian when missing (root or sudo), as `make services` installs the test servers
.PHONY: bench-http
bench-http: dev ## HTTP under real servers: wrk against FastAPI/uvicorn, Flask and DRF under gunicorn (about 10 min)
	@command -v wrk >/dev/null || { SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get install -y -qq wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }; }
	$(PY) -m bastion bench http

# criterion's own options (after `--`), e.g. `make bench-rust CRITERION='--measurement-time 5 hot'` (a name filter)
CRITERION ?= --warm-up-time 1 --measurement-time 2
.PHONY: bench-rust
bench-rust: ## criterion benchmarks of the Rust core alone (no Python; benches/rust/*.rs), release build
	cargo bench --no-default-features --bench jwt --bench opaque --bench ratelimit -- $(CRITERION)

.PHONY: lint
lint: $(VENV)/.deps ## cargo fmt --check, clippy -D warnings, ruff, mypy --strict, stubtest
	cargo fmt --check
	cargo clippy -q --all-targets -- -D warnings
	cargo clippy -q --all-targets --no-default-features -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/ruff format --check python tests benches examples
	$(VENV)/bin/mypy python/bastion tests benches examples
	$(VENV)/bin/python -m mypy.stubtest bastion._core

.PHONY: format
format: $(VENV)/.deps ## format Rust and Python
	cargo fmt
	$(VENV)/bin/ruff format python tests benches examples
	$(VENV)/bin/ruff check --fix python tests benches examples

# the first Python 3.12 that actually runs (a pyenv shim without 3.12 selected does not)
PY312 ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12); do \
	$$p -c "" 2>/dev/null && echo $$p && break; done)
.PHONY: bench-312
bench-312: ## the JWT peer comparison under Python 3.12 too (ryjwt needs it), from the same abi3 wheel
	@test -n "$(PY312)" || { echo "no python3.12 on this machine"; exit 1; }
	test -x .venv312/bin/python || $(PY312) -m venv .venv312
	.venv312/bin/python -m pip install -q --upgrade pip maturin "PyJWT[crypto]>=2.8" "joserfc>=1.0" oxyjwt ryjwt
	.venv312/bin/maturin build -q --release -o target/wheels-312
	.venv312/bin/python -m pip install -q --force-reinstall --no-deps target/wheels-312/bastion-*.whl
	.venv312/bin/python -m bastion bench jwt

# cargo-fuzz (nightly; `cargo install cargo-fuzz`): each target for FUZZ_SECONDS. New inputs go to
# fuzz/target/corpus (not committed); fuzz/corpus holds the committed seeds, replayed by `cargo test`.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := jwt_verify json json_differential opaque_format keys bearer
.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZ_SECONDS (default 60) each; crashes land in fuzz/artifacts/<target>
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/target/corpus/$$t; \
		cargo +nightly fuzz run --fuzz-dir fuzz $$t fuzz/target/corpus/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 || exit 1; \
	done
