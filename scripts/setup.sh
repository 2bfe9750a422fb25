#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 or 13 machine for fleetwatch:
# Mosquitto, PostgreSQL + TimescaleDB, a Python venv with fleetwatch installed, the database migrated.
# Writes .fleetwatch.env (FLEETWATCH_DATABASE_URL, FLEETWATCH_ADMIN_DATABASE_URL) for scripts/dev.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v pg_lsclusters >/dev/null || missing+=(postgresql postgresql-contrib)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v gcc >/dev/null || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
apt_listed=$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' 2>/dev/null | head -n 1)
[ -n "$apt_listed" ] || as_root apt-get update -qq

# Mosquitto on 127.0.0.1:1883 (the machine's own broker; started if it is not running).
if ! port_open 1883; then
  log "starting mosquitto"
  if [ -d /run/systemd/system ]; then as_root systemctl start mosquitto
  else as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf; fi
  for _ in $(seq 50); do port_open 1883 && break; sleep 0.1; done
fi

# PostgreSQL with TimescaleDB.
read -r PG_VERSION PG_CLUSTER PG_PORT < <(bash scripts/install-timescaledb.sh | tail -n 1)
log "PostgreSQL $PG_VERSION/$PG_CLUSTER on port $PG_PORT has TimescaleDB"
for _ in $(seq 100); do port_open "$PG_PORT" && break; sleep 0.1; done
psql_admin() { as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@"; }
psql_admin -d postgres <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fleetwatch') THEN
    CREATE ROLE fleetwatch LOGIN SUPERUSER PASSWORD 'fleetwatch';
  END IF;
END $$;
SQL
DB_URL="postgresql://fleetwatch:fleetwatch@127.0.0.1:$PG_PORT/fleetwatch"
printf 'FLEETWATCH_DATABASE_URL=%s\n' "$DB_URL" > "$ROOT/.fleetwatch.env"

# Python environment.
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.fleetwatch-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing fleetwatch and its dependencies into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
  touch "$stamp"
fi

FLEETWATCH_DATABASE_URL=$DB_URL .venv/bin/fleetwatch db create
log "ready: database $DB_URL, broker 127.0.0.1:1883"
