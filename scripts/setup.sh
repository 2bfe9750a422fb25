#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 or 13 machine for fleetwatch:
# Mosquitto, PostgreSQL + TimescaleDB, a Python venv with fleetwatch installed, the database migrated.
# Writes .fleetwatch.env (FLEETWATCH_DATABASE_URL, FLEETWATCH_ADMIN_DATABASE_URL) for scripts/dev.
# The Python packages come from requirements.lock only (hashes required); whatever the lock does not have is
# removed from .venv; a changed lock or pyproject re-installs.
#   --packages-only   install what needs the network (Debian packages, .venv) and start nothing
#                     (scripts/dev check-trixie uses it before cutting the network off)
set -euo pipefail
packages_only=false
[ "${1:-}" = --packages-only ] && packages_only=true
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# What a minimal Debian 13 (or 12) lacks for the rest of this script.
missing=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && dpkg -s ca-certificates >/dev/null 2>&1 || missing+=(ca-certificates)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v pg_lsclusters >/dev/null || missing+=(postgresql postgresql-contrib)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  2>/dev/null || missing+=(python3-dev)
command -v gcc >/dev/null || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
apt_listed=$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' 2>/dev/null | head -n 1)
[ -n "$apt_listed" ] || as_root apt-get update -qq

# Python environment: exactly requirements.lock, then fleetwatch itself (editable, no dependencies).
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.fleetwatch-installed
wanted=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  log "installing requirements.lock and fleetwatch into .venv"
  pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
  "${pip[@]}" install --require-hashes --no-deps -r requirements.lock
  "${pip[@]}" install --no-deps -e .
  extras=$(.venv/bin/python scripts/check_lock.py --extras)
  if [ -n "$extras" ]; then
    log "removing what the lock does not have: $(echo $extras)"
    # shellcheck disable=SC2086
    "${pip[@]}" uninstall -y $extras
  fi
  printf '%s\n' "$wanted" > "$stamp"
fi

if $packages_only; then
  bash scripts/install-timescaledb.sh --packages-only
  log "packages installed (nothing started)"
  exit 0
fi

# Mosquitto on 127.0.0.1:1883 (the machine's own broker; started if it is not running).
if ! port_open 1883; then
  log "starting mosquitto"
  if [ -d /run/systemd/system ]; then as_root systemctl start mosquitto
  else
    as_root install -d -o mosquitto -g mosquitto /run/mosquitto /var/log/mosquitto /var/lib/mosquitto
    as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
  fi
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

FLEETWATCH_DATABASE_URL=$DB_URL .venv/bin/fleetwatch db create
log "ready: database $DB_URL, broker 127.0.0.1:1883"
