#!/usr/bin/env bash
# Installs and starts what the tests need, where this machine allows it:
#  - Debian packages: WeasyPrint's fast font subsetting, poppler (PDF -> PNG), Chromium for browser tests;
#  - PostgreSQL: starts the local cluster and creates the role and database the tests use.
# On a laptop without root or apt it says what is missing and carries on; the tests then skip
# with a clear message (with CI=true they fail instead).
set -uo pipefail

PG_USER=jointcall PG_PASS=jointcall PG_DB=jointcall_test
APT_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils chromium postgresql)

say() { printf '[test-services] %s\n' "$*"; }

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-upgrade --no-install-recommends "${missing[@]}" >/dev/null || {
      say "apt-get install failed"; [ "${CI:-}" = "true" ] && exit 1; }
  else
    say "missing Debian packages (install them as root): ${missing[*]}"
  fi
fi

# PostgreSQL: start the newest installed cluster and create the test role and database.
if command -v pg_lsclusters >/dev/null 2>&1; then
  read -r PGVER PGCLUSTER PGPORT PGSTATUS _ < <(pg_lsclusters -h | sort -k1,1n | tail -n 1)
  if [ -n "${PGVER:-}" ]; then
    if [ "$PGSTATUS" != "online" ]; then
      if [ "$(id -u)" = 0 ]; then
        say "starting PostgreSQL $PGVER/$PGCLUSTER"
        pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$PGCLUSTER" start || true
      else
        say "PostgreSQL $PGVER/$PGCLUSTER is down and this user cannot start it"
      fi
    fi
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.2; done
    if pg_isready -q -h 127.0.0.1 -p "$PGPORT" && [ "$(id -u)" = 0 ]; then
      su postgres -c "psql -p $PGPORT -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'\"" | grep -q 1 \
        || su postgres -c "psql -p $PGPORT -qc \"CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASS' CREATEDB\""
      su postgres -c "psql -p $PGPORT -qtAc \"SELECT 1 FROM pg_database WHERE datname='$PG_DB'\"" | grep -q 1 \
        || su postgres -c "createdb -p $PGPORT -O $PG_USER $PG_DB"
      say "PostgreSQL ready: postgresql+psycopg://$PG_USER:***@127.0.0.1:$PGPORT/$PG_DB"
    fi
  fi
else
  say "PostgreSQL is not installed; the PostgreSQL pass will be skipped (CI=true makes that an error)"
fi
exit 0
