# The two commands that matter: `make run` and `make test`. Each builds the virtualenv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
SERVICES := registry household referral reporting

.PHONY: run test lint typecheck arch fmt asyncapi clean bench token

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m deploy.local.stack

# A bearer token for the local stack: make -s token ROLE=opd AGENCY=<uuid> FIELDS=kesehatan,sosial
# (ROLE=kader POSYANDU=<uuid,...>, ROLE=pembina REGION=3171, any role SUB=<name>, HOURS=<1-24>).
token: $(STAMP)
	@$(BIN)/python -m deploy.local.token --role "$(ROLE)" $(if $(SUB),--sub "$(SUB)") \
		$(if $(POSYANDU),--posyandu "$(POSYANDU)") $(if $(AGENCY),--agency "$(AGENCY)") \
		$(if $(FIELDS),--fields "$(FIELDS)") $(if $(REGION),--region "$(REGION)") $(if $(HOURS),--hours "$(HOURS)")

# Benchmarks on a private stack (temporary data dir, free ports); BENCH_SCALE=full for the issue's sizes.
bench: $(STAMP)
	$(BIN)/python -m bench

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy shared services deploy tests bench
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix .

asyncapi: $(STAMP)
	for s in $(SERVICES); do $(BIN)/python -m services.$$s asyncapi > services/$$s/asyncapi.json; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
