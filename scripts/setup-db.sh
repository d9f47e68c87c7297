#!/usr/bin/env bash
# Make sure a PostgreSQL 15 server with PostGIS answers, and that the database named in
# GRIDMAP_DATABASE_URL (or the one given as $1) exists with the postgis extension.
#
# Works where PostgreSQL already runs at 127.0.0.1:5432 with trust auth (these machines, CI),
# and where it is missing, stopped, or set up with peer/password auth: then the script installs
# Debian's packages, starts the cluster, and creates a login role "gridmap" with a password,
# recording the URL in .env so the app and the tests find it.
set -euo pipefail
cd "$(dirname "$0")/.."

DB_NAME="${1:-gridmap}"
PGHOST=127.0.0.1
PGPORT="${GRIDMAP_PGPORT:-5432}"
PG_MAJOR=15
CLUSTER="${GRIDMAP_PG_CLUSTER:-main}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { printf '[setup-db] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# 1. Packages: PostgreSQL and PostGIS from Debian.
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d "/usr/lib/postgresql/$PG_MAJOR/bin" ]; then
  apt_install "postgresql-$PG_MAJOR" postgresql-client
fi
if [ ! -f "/usr/share/postgresql/$PG_MAJOR/extension/postgis.control" ]; then
  apt_install "postgresql-$PG_MAJOR-postgis-3"
fi

# 2. A running server at 127.0.0.1:5432.
if ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$PG_MAJOR $CLUSTER$"; then
    log "creating cluster $PG_MAJOR/$CLUSTER"
    $SUDO pg_createcluster "$PG_MAJOR" "$CLUSTER" --port "$PGPORT" >/dev/null
  fi
  log "starting PostgreSQL $PG_MAJOR/$CLUSTER"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$CLUSTER" start \
    || $SUDO pg_ctlcluster "$PG_MAJOR" "$CLUSTER" start
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
  pg_isready -q -h "$PGHOST" -p "$PGPORT" || { log "PostgreSQL does not answer at $PGHOST:$PGPORT"; exit 1; }
fi

# 3. A role we can log in with over TCP.
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
if psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -w -qAtc "select 1" >/dev/null 2>&1; then
  ADMIN=(psql -h "$PGHOST" -p "$PGPORT" -U postgres -w -v ON_ERROR_STOP=1 -qAt)
  URL_BASE="postgresql+psycopg://postgres@$PGHOST:$PGPORT"
else
  # Peer or password auth on TCP: work through the local socket as the postgres OS user and
  # give the app a password role of its own.
  log "trust auth not available on $PGHOST:$PGPORT; creating role gridmap"
  PASS_FILE=.gridmap-db-password
  [ -f "$PASS_FILE" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$PASS_FILE")
  PASS=$(cat "$PASS_FILE")
  as_postgres psql -p "$PGPORT" -v ON_ERROR_STOP=1 -qAt -d postgres <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gridmap') THEN
    CREATE ROLE gridmap LOGIN CREATEDB PASSWORD '$PASS';
  ELSE
    ALTER ROLE gridmap LOGIN CREATEDB PASSWORD '$PASS';
  END IF;
END \$\$;
SQL
  ADMIN=(as_postgres psql -p "$PGPORT" -v ON_ERROR_STOP=1 -qAt)
  URL_BASE="postgresql+psycopg://gridmap:$PASS@$PGHOST:$PGPORT"
  touch .env
  grep -q '^GRIDMAP_DATABASE_URL=' .env || echo "GRIDMAP_DATABASE_URL=$URL_BASE/gridmap" >> .env
  grep -q '^GRIDMAP_TEST_DATABASE_URL=' .env || echo "GRIDMAP_TEST_DATABASE_URL=$URL_BASE/gridmap_test" >> .env
fi

# 4. The database and its postgis extension.
create_db() {
  local name="$1"
  if [ "$("${ADMIN[@]}" -d postgres -c "select 1 from pg_database where datname = '$name'")" != "1" ]; then
    log "creating database $name"
    if [ "${URL_BASE#*gridmap:}" != "$URL_BASE" ]; then
      "${ADMIN[@]}" -d postgres -c "CREATE DATABASE \"$name\" OWNER gridmap" >/dev/null
    else
      "${ADMIN[@]}" -d postgres -c "CREATE DATABASE \"$name\"" >/dev/null
    fi
  fi
  "${ADMIN[@]}" -d "$name" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}
create_db "$DB_NAME"
log "database $DB_NAME ready with PostGIS $("${ADMIN[@]}" -d "$DB_NAME" -c 'select postgis_lib_version()')"
