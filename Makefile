# The two commands of the README: `make run` (set up, synthesize and check every stage, then run the pipeline, the
# registry, approval and serving on this machine against an embedded AWS) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CDK := npx --no-install cdk

# The CDK CLI runs on Node: keep it offline. (jsii's Node end-of-life banner is silenced where it would start, by
# app.py and mlops, for whichever Node runs.)
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true
# Bytecode lives in the venv, not beside the sources (the code bundle and the serving image hash the source trees),
# and is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): without it every process the tests
# start compiles our sources again, and each test worker rewrites every test module's asserts again (measured in a
# fresh clone: a tenth of the suite's CPU time, 20 to 25 s of its wall time).
export PYTHONPYCACHEPREFIX := $(CURDIR)/$(VENV)/pycache
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup setup-deploy run synth test clean

setup: $(VENV)/.installed node_modules/.installed
# A machine that only synthesizes, deploys and operates (`mlops` against AWS): requirements.txt alone, no torch.
setup-deploy: $(VENV)/.installed-deploy node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-training.txt training_code/serving/requirements.txt requirements-dev.txt \
		pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-compile --no-deps --no-build-isolation --editable .
	@# pip compiles each package's files on one core (2 of 3 minutes of set-up, measured); this uses every core and
	@# skips the packages' own test suites. Files that do not compile (templates, other Python versions) are never
	@# imported, so their errors do not matter here.
	$(BIN)/python -m compileall -q -j0 -x '/tests?/' $(VENV)/lib > /dev/null || true
	touch $@

$(VENV)/.installed-deploy: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-compile --no-deps --no-build-isolation --editable .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: setup
	rm -rf cdk.out
	$(CDK) synth --quiet --no-notices --no-version-reporting

run: synth
	$(BIN)/python -m infra.summary cdk.out
	$(BIN)/mlops local loop --stage dev

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# One worker per core; a module's tests stay on one worker, so its module-scoped fixtures (the local loop's run,
	@# the servers) start once. tests/conftest.py synthesizes the app once for all workers.
	$(BIN)/python -m pytest -n auto --dist loadscope --no-loadscope-reorder

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .local
