#!/usr/bin/env bash
# Runs the whole suite on SQLite, then again on PostgreSQL. Browser tests run in the SQLite pass;
# the PostgreSQL pass adds what only PostgreSQL shows (row locks, concurrent sign-offs) and re-runs the
# domain and web tests against it.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export JOINTCALL_TEST_PG_URL="${JOINTCALL_TEST_PG_URL:-postgresql+psycopg://jointcall:jointcall@127.0.0.1:5432/jointcall_test}"

status=0
echo "== pass 1/2: SQLite (with browser tests) =="
JOINTCALL_TEST_DB=sqlite "$BIN/pytest" -q -p no:cacheprovider -m "not pg" "$@" || status=$?

if "$BIN/python" - <<'PY'
import os, sys
from tests.conftest import pg_available
why = pg_available(os.environ["JOINTCALL_TEST_PG_URL"])
if why:
    print(f"PostgreSQL is not available ({why})")
sys.exit(1 if why else 0)
PY
then
  echo "== pass 2/2: PostgreSQL =="
  JOINTCALL_TEST_DB=pg "$BIN/pytest" -q -p no:cacheprovider -m "not browser" "$@" || status=$?
else
  if [ "${CI:-}" = "true" ]; then
    echo "CI=true: the PostgreSQL pass must run; failing"
    status=1
  else
    echo "== pass 2/2 skipped: no PostgreSQL here (run as root on Debian to have it started) =="
  fi
fi
exit $status
