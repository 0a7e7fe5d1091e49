#!/usr/bin/env bash
# The test command (README): installs the project into .venv, starts a throwaway PostgreSQL
# server when its binaries are present, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

# A private PostgreSQL cluster for the integration tests (stopped on exit).
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "${LIFECERT_TEST_POSTGRES_URL:-}" ] && [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ]; then
  PGDIR=$(mktemp -d /tmp/lifecert-pg.XXXXXX)
  PGPORT=${LIFECERT_TEST_PGPORT:-54329}
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  [ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
  as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U lifecert --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
    -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  trap 'as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$PGDIR"' EXIT
  as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U lifecert lifecert_test
  export LIFECERT_TEST_POSTGRES_URL="postgresql+psycopg2://lifecert@127.0.0.1:$PGPORT/lifecert_test"
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') for tests at 127.0.0.1:$PGPORT"
fi

# Static checks first: a lint or type error fails the run like a failing test.
.venv/bin/ruff check .
.venv/bin/mypy

.venv/bin/python -m pytest "$@"
