# The README's two commands: `make demo` and `make test`. Both set up .venv on a fresh machine.
# One Python for everything: the Lambda runtime's (python3.12). Found on PATH or in the usual
# version managers' folders; PYTHON=/path/to/python3.12 overrides.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12.*/bin/python3.12 \
	$$HOME/.asdf/installs/python/3.12.*/bin/python3.12 $$HOME/.local/share/uv/python/cpython-3.12.*/bin/python3.12 \
	/usr/local/bin/python3.12 /usr/bin/python3.12; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= staging

.PHONY: demo test test-unit lock lint typecheck docs protos package check-package examples bench-validate bench-mme bench-pipeline bench-approval bench-api bench-stack-up bench-cold-start bench-rollout clean

# The venv is the lock: requirements/lock.txt pins every package of every extra (make lock).
$(STAMP): requirements/lock.txt pyproject.toml setup.py
	@test -n "$(PYTHON)" || { echo "mmedeploy needs Python 3.12 (the Lambda runtime) and found none. Install it:" \
	  "'pyenv install 3.12' (or 'uv python install 3.12', or your OS's python3.12 package)," \
	  "or point make at it: make PYTHON=/path/to/python3.12 ..." >&2; exit 1; }
	@test ! -x $(BIN)/python || $(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null \
	  || { echo "$(VENV) is not Python 3.12: recreating it" >&2; rm -rf $(VENV); }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$$(grep '^pip==' requirements/lock.txt)"  # the lock's pip first (chalice's < 26.3)
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

examples: $(STAMP)
	$(BIN)/python examples/build_examples.py

## demo: the whole flow on the local stack: package, push, approve, serve, reject a broken model (KEEP=1 keeps the stack)
demo: examples
	$(BIN)/python -m mmedeploy demo$(if $(filter 1,$(KEEP)), --keep)

## test: lint, type-check, build the docs, package and check the staging template, and run the whole suite
test: $(STAMP) lint typecheck docs
	$(MAKE) --no-print-directory check-package STAGE=staging
	$(BIN)/python -m pytest

## test-unit: the unit tests alone (tests/unit, none marked slow: no stack, no Triton), on two workers; about a minute
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow" tests/unit

## lock: re-resolve requirements/lock.txt from pyproject.toml and requirements/*.in, keeping its versions
## where they still fit (UPGRADE=1: the newest), and write the Lambdas' requirement files from it
lock: $(STAMP)
	$(BIN)/python -m mmedeploy.deploy.lock$(if $(filter 1,$(UPGRADE)), --upgrade)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## docs: the docs site (docs/, mkdocs.yml) into build/site; --strict: a broken link or anchor, a page left out of the nav fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d build/site

## package: build/$(STAGE)/ for `aws cloudformation package` (STAGE=dev|staging|prod, default staging); reuses what is unchanged
package: $(STAMP)
	$(BIN)/python -m mmedeploy.deploy.package --stage $(STAGE)

## protos: regenerate the validator's protobuf classes (chalicelib/domain/validation/schemas/*_pb2.py) from their .proto files
protos: $(STAMP)
	$(BIN)/python -m mmedeploy.deploy.protos

## triton-fields: regenerate which Triton release introduced each ModelConfig field (chalicelib/domain/validation/schemas/triton_fields.py)
## from git mirrors: make triton-fields COMMON=<triton-inference-server/common git dir> SERVER=<triton-inference-server/server git dir>
.PHONY: triton-fields
triton-fields: $(STAMP)
	@test -n "$(COMMON)" -a -n "$(SERVER)" || { echo "usage: make triton-fields COMMON=<git dir of triton-inference-server/common> SERVER=<git dir of triton-inference-server/server> (git clone --mirror)" >&2; exit 1; }
	$(BIN)/python -m mmedeploy.deploy.triton_fields --common $(COMMON) --server $(SERVER)

## check-package: cfn-lint (errors and warnings fail) and the IAM policy check on build/$(STAGE)/sam.yaml
check-package: package
	$(BIN)/cfn-lint build/$(STAGE)/sam.yaml
	$(BIN)/python -m mmedeploy.deploy.policy_check build/$(STAGE)/sam.yaml

## bench-validate: validator vs `gzip -dc` on a >= 400 MB tarball, and peak RSS
bench-validate: $(STAMP)
	$(BIN)/python benchmarks/bench_validate.py

## bench-mme: local MME cold vs warm invoke, and its p50 over Triton's own (target <= 1.3x)
bench-mme: examples
	$(BIN)/python benchmarks/bench_mme.py

## bench-validate-load: `mmedeploy validate --load` of the example ensemble vs the local MME's cold load of the same tarball (<= 2x)
.PHONY: bench-validate-load
bench-validate-load: examples
	$(BIN)/python benchmarks/bench_validate_load.py

## bench-pipeline: upload -> AWAITING_APPROVAL split into validation, Triton load, overhead (target <= 2 s)
bench-pipeline: examples
	$(BIN)/python benchmarks/bench_pipeline.py

## bench-api: the local API with keep-alive clients (tritonclient, requests) vs the same request straight to the local MME (p50 <= 1.5x)
bench-api: examples
	$(BIN)/python benchmarks/bench_api.py

## bench-stack-up: `mmedeploy up` to ready (<= 10 s), first upload -> AWAITING_APPROVAL with cold processes vs warm (<= 2x)
bench-stack-up: examples
	$(BIN)/python benchmarks/bench_stack_up.py

## bench-approval: the Slack webhook's answer time (budget 3 s) and click -> PRODUCTION
bench-approval: $(STAMP)
	$(BIN)/python benchmarks/bench_approval.py

## bench-rollout: a rollout gate's breach -> the canary's removal on the local stack (<= one evaluation interval + 5 s)
bench-rollout: examples
	$(BIN)/python benchmarks/bench_rollout.py

## bench-cold-start: each handler's import from its artifact vs boto3 + a client (API <= 1.5x, stages <= 2x), artifact sizes (<= 60 MB)
bench-cold-start: $(STAMP)
	$(BIN)/python benchmarks/bench_cold_start.py --stage $(STAGE)

## bench-triton-agreement: the validator on Triton's own config cases (tests/data/triton_config_cases): caught, missed, too strict (ARGS=--json, ARGS=--write-caught)
.PHONY: bench-triton-agreement triton-cases
bench-triton-agreement: $(STAMP)
	$(BIN)/python benchmarks/triton_agreement.py $(ARGS)

## triton-cases: refresh tests/data/triton_config_cases from a clone of Triton's server: make triton-cases SERVER=<git dir> [REF=r24.09]
triton-cases: $(STAMP)
	@test -n "$(SERVER)" || { echo "usage: make triton-cases SERVER=<git dir of triton-inference-server/server> [REF=r24.09]" >&2; exit 1; }
	$(BIN)/python -m testkit.triton_cases import --from $(SERVER)$(if $(REF), --ref $(REF))

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
