.PHONY: demo test format

demo:  ## Run the example project on SQLite at http://127.0.0.1:8000/
	scripts/demo

test:  ## ruff, mypy, the suite on SQLite and PostgreSQL on Django 5.2 and 6.1, then end to end
	scripts/test

format:
	.venvs/dj52/bin/ruff format . && .venvs/dj52/bin/ruff check --fix .
