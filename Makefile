# pg_audit_trail — the commands the README documents.
# PG=16|17|18 builds and tests against that PostgreSQL (default 15):
#   make test PG=18
PG ?= 15
export PG

.PHONY: setup install test test-unit test-sql test-integration demo demo-stop clean bench

setup:
	bash scripts/setup

install: setup
	bash scripts/install

# Everything the project tests, from a clean clone.
test:
	bash scripts/test

test-unit:
	bash scripts/test unit

test-sql:
	bash scripts/test sql

test-integration:
	bash scripts/test integration

demo:
	bash scripts/demo

demo-stop:
	bash scripts/demo stop

clean:
	bash scripts/demo stop || true
	rm -rf build target

# Benchmarks (not tests): capture cost, reading speed, retention. See bench/run.
bench:
	bash bench/run
