#!/usr/bin/env bash
# The test command (README): installs the project into .venv, starts a throwaway PostgreSQL
# server when its binaries are present, and runs the whole test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/unit -x`).
# LIFECERT_TEST_PGPORT pins the PostgreSQL port; by default a free port on 127.0.0.1 is chosen.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

# A private PostgreSQL cluster for the integration tests (stopped and removed on exit).
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "${LIFECERT_TEST_POSTGRES_URL:-}" ] && [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ]; then
  PGDIR=$(mktemp -d /tmp/lifecert-pg.XXXXXX)
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  cleanup_pg() {
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
  }
  trap cleanup_pg EXIT
  [ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
  as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U lifecert --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  started=""
  for attempt in 1 2 3 4 5; do
    # The kernel hands out a free port; a race with another process is retried.
    PGPORT=${LIFECERT_TEST_PGPORT:-$(.venv/bin/python -c \
      'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')}
    if as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
        -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1; then
      started=1
      break
    fi
    [ -n "${LIFECERT_TEST_PGPORT:-}" ] && break
  done
  if [ -z "$started" ]; then
    echo "PostgreSQL for tests did not start on 127.0.0.1:$PGPORT; its log:" >&2
    cat "$PGDIR/log" >&2 || true
    exit 1
  fi
  as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U lifecert lifecert_test
  export LIFECERT_TEST_POSTGRES_URL="postgresql+psycopg2://lifecert@127.0.0.1:$PGPORT/lifecert_test"
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') for tests at 127.0.0.1:$PGPORT"
fi

# Static checks first: a lint or type error fails the run like a failing test.
.venv/bin/ruff check .
.venv/bin/mypy

.venv/bin/python -m pytest "$@"
