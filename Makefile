# Every target sets up what it needs (scripts/), so a fresh clone needs only `make run` or `make test`.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv
PYTEST_ARGS ?=

.PHONY: help run dev init-db test test-cluster screenshots bench lint db-stop clean distclean

help: ## List the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## /{printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: init-db ## Serve the API on http://localhost:8080 (Swagger UI at /apidocs) and deliver its webhooks
	exec $(VENV)/bin/honcho start --port "$${PORT:-8080}" # the Procfile's processes, stopped together

dev: init-db ## Serve the API with Flask's development server on port 8080
	exec $(VENV)/bin/python app.py

init-db: ## Set up .venv, .env and a database server, then apply schema.sql
	scripts/bootstrap.sh
	scripts/ensure_db.sh
	$(VENV)/bin/flask --app app init-db

test: ## Run the tests on a real database, then on a Galera cluster (PYTEST_ARGS="-k x" narrows; CLUSTER=0 skips it)
	scripts/bootstrap.sh dev
	scripts/install_newman.sh
	scripts/install_chromium.sh
	scripts/ensure_db.sh
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)
	if [ "$(CLUSTER)" != 0 ]; then scripts/test_cluster.sh; fi

test-cluster: ## Run only the tests on a 3-node Galera cluster (scripts/test_cluster.sh)
	scripts/bootstrap.sh dev
	scripts/install_newman.sh
	scripts/install_chromium.sh
	scripts/test_cluster.sh $(PYTEST_ARGS)

screenshots: ## Regenerate screenshots/ from a live server in a real headless browser
	scripts/bootstrap.sh dev
	scripts/install_newman.sh
	scripts/install_chromium.sh
	scripts/ensure_db.sh
	$(VENV)/bin/python scripts/screenshots.py

bench: ## Run the benchmark (bench/run.sh; QUICK=1 for a short smoke run); writes bench/RESULTS.md
	scripts/bootstrap.sh dev
	scripts/ensure_db.sh
	bench/run.sh

lint: ## Check the code with ruff (lint and formatting)
	scripts/bootstrap.sh dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

db-stop: ## Stop the project's private MariaDB, if one runs
	scripts/ensure_db.sh stop

clean: ## Remove .venv (keeps .env and the database)
	rm -rf $(VENV)

distclean: ## Also delete .env (the card keys) and the private database in .mariadb/, after asking
	@echo "This deletes .venv, .env and .mariadb/. Without the keys in .env, card data stored anywhere"
	@echo "with them can never be decrypted again; the private database in .mariadb/ is lost too."
	@read -r -p "Type yes to delete them: " answer && [ "$$answer" = yes ]
	scripts/ensure_db.sh stop
	rm -rf $(VENV) .env .mariadb
