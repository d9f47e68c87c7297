# The README's two commands. Everything they need is set up by the scripts they call.
.PHONY: run test setup lint bench

setup:
	scripts/bootstrap.sh
	scripts/setup-db.sh gridmap

# Run the app on the demo district at http://127.0.0.1:8050
run: setup
	.venv/bin/gridmap db upgrade
	.venv/bin/gridmap demo load --if-empty
	.venv/bin/gridmap serve

# Run the whole test suite (unit, PostGIS integration, headless chromium)
test:
	scripts/bootstrap.sh
	scripts/setup-db.sh gridmap_test
	scripts/setup-browser.sh
	.venv/bin/ruff check gridmap tests
	.venv/bin/python -m pytest -n 2 --dist loadgroup

lint:
	.venv/bin/ruff check gridmap tests
