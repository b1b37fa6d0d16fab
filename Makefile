# Entry points. `make test` is what CI runs (.ci/run); see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin

.PHONY: help setup lint format generate generate-check test unit integration up down status demo images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## install and build everything (cached outside the clone)
	@hack/setup

lint: setup ## ruff (lint + format check) and mypy --strict
	$(PY)/ruff check .
	$(PY)/ruff format --check .
	$(PY)/mypy

format: setup ## apply ruff's formatting and safe fixes
	$(PY)/ruff format .
	$(PY)/ruff check --fix .

GENERATORS := cj_operator.crd deploy.values_schema deploy.chart_readme deploy.dashboard

generate: setup ## rewrite what is generated from code: CRD + CRD reference, values schema, chart README, dashboard
	@for module in $(GENERATORS); do echo "==> python -m $$module"; $(PY)/python -m $$module || exit 1; done

generate-check: setup ## exit 1 when a generated file is out of date (the unit tests check the same)
	@for module in $(GENERATORS); do $(PY)/python -m $$module --check || exit 1; done

test: lint ## lint, then every test (unit, integration, end-to-end) on the local cluster
	$(PY)/pytest -v

unit: setup ## only the tests that need no services
	$(PY)/pytest -m "not integration"

integration: setup ## only the tests on the real services
	$(PY)/pytest -v -m integration

demo: setup ## the main job: rank essays through the whole system (ESSAYS=file.csv PROMPT=file.txt)
	$(PY)/python -m hack.demo $(if $(ESSAYS),--essays "$(ESSAYS)") $(if $(PROMPT),--prompt-file "$(PROMPT)")

images: setup ## build the operator and workers images without Docker (buildah), as OCI archives in ~/.cache/cj-operator/images
	@hack/images build

up: setup ## start the local cluster (PostgreSQL, Redis, Kafka, etcd, kube-apiserver); NODE=1 adds a node that runs pods
	@hack/devcluster up $(if $(NODE),--node)
	@echo "connect with: eval \"\$$(hack/devcluster env)\""

down: ## stop the local cluster and the demo's processes
	@hack/devcluster down

status: ## show which components of the local cluster run
	@hack/devcluster status
