# VoiceDesk: `make run` starts the product, `make test` runs the whole suite.
SHELL := /bin/bash
PY := .venv/bin/python
ENV := set -a; source var/services.env; set +a;
# Without it every entry point (manage.py, asgi.py) runs the production
# settings, which refuse to start without real secrets.
export DJANGO_SETTINGS_MODULE ?= voicedesk.settings.dev

.PHONY: setup services migrate run test lint bench demo-call

setup:
	@scripts/bootstrap.sh
	@$(MAKE) --no-print-directory services

services:
	@.venv/bin/python scripts/services.py

migrate: setup
	@$(ENV) $(PY) manage.py migrate_schemas --executor=standard -v 0
	@$(ENV) $(PY) manage.py platform_init

run: migrate
	@$(ENV) $(PY) manage.py seed_demo
	@$(ENV) exec .venv/bin/honcho -f Procfile.dev start

# Unit and integration tests run on both cores; the acceptance calls run
# afterwards on their own, because they are real time and timing is tested.
test: setup
	@rm -rf var/test-results
	@$(ENV) DJANGO_SETTINGS_MODULE=voicedesk.settings.test $(PY) -m pytest -m "not acceptance" -n 2 --dist loadgroup \
		--junitxml=var/test-results/unit.xml $(PYTEST_ARGS)
	@$(ENV) DJANGO_SETTINGS_MODULE=voicedesk.settings.test $(PY) -m pytest -m acceptance -rA \
		--junitxml=var/test-results/acceptance.xml $(PYTEST_ARGS)
	@$(PY) scripts/test_summary.py var/test-results/unit.xml var/test-results/acceptance.xml

lint: setup
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@$(ENV) .venv/bin/mypy .
	@.venv/bin/lint-imports

bench: migrate
	@for script in bench/*.py; do echo "== $$script"; $(ENV) $(PY) $$script || exit 1; done

demo-call: migrate
	@$(ENV) $(PY) manage.py simulate_call --scenario scenarios/demo-call.yaml --base-url http://localhost:8000 --record-dir var/demo-calls
