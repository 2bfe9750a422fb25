#!/usr/bin/env bash
# Make TimescaleDB (Apache edition) available to a local PostgreSQL cluster.
#
# Road 1 (Debian 12, or Debian 13 where postgresql-server-dev-15 is installable):
#   build Debian 13's timescaledb source package against the PostgreSQL 15 that the machine runs.
# Road 2 (no dev headers for 15, e.g. Debian 13): Debian's default PostgreSQL 17 cluster (17/main, created by
#   the package on whatever port was free) with Debian's postgresql-17-timescaledb package. An older install's
#   17/fleetwatch is kept. No fixed port: a cluster that shares its port with another one is moved to a free port.
# Prints the chosen "<version> <cluster> <port>" as its last line, the port read back from the cluster. Idempotent.
#   --packages-only   install the Debian packages of the road that applies, create or start nothing
set -euo pipefail

log() { printf 'install-timescaledb: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_ctl_cluster() { # version cluster action
  if [ -d /run/systemd/system ]; then as_root pg_ctlcluster "$1" "$2" "$3"
  else as_root pg_ctlcluster --skip-systemctl-redirect "$1" "$2" "$3"; fi
}

ensure_preload() { # version cluster
  local conf="/etc/postgresql/$1/$2/conf.d/timescaledb.conf"
  if ! grep -qs "timescaledb" "$conf"; then
    log "enabling shared_preload_libraries=timescaledb in $conf and restarting $1/$2"
    as_root mkdir -p "$(dirname "$conf")"
    printf "shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\nmax_locks_per_transaction = 256\n" | as_root tee "$conf" >/dev/null
    pg_ctl_cluster "$1" "$2" restart
  elif [ "$(pg_lsclusters -h | awk -v v="$1" -v c="$2" '$1==v && $2==c {print $4}')" != online ]; then
    pg_ctl_cluster "$1" "$2" start
  fi
}

has_timescaledb() { # version
  ls /usr/share/postgresql/"$1"/extension/timescaledb.control >/dev/null 2>&1
}

build_for_15() {
  local work=/var/cache/fleetwatch/timescaledb
  as_root mkdir -p "$work/lists/partial" && cd "$work"
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n' | as_root tee "$work/trixie-src.list" >/dev/null
  local opts=(-o Dir::Etc::sourcelist="$work/trixie-src.list" -o Dir::Etc::sourceparts=/dev/null -o Dir::State::Lists="$work/lists")
  as_root apt-get "${opts[@]}" update -qq
  as_root rm -rf "$work"/timescaledb-*/
  as_root apt-get "${opts[@]}" source -qq --download-only timescaledb
  as_root dpkg-source -x "$(ls -1 "$work"/timescaledb_*.dsc | tail -n 1)" >/dev/null
  cd "$(ls -d "$work"/timescaledb-*/ | tail -n 1)"
  log "building $(basename "$PWD") against PostgreSQL 15"
  as_root ./bootstrap -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
    -DPG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
  as_root make -s -C build -j"$(nproc)" install >/dev/null
}

cluster_port() { # version cluster
  pg_lsclusters -h | awk -v v="$1" -v c="$2" '$1==v && $2==c {print $3}'
}

free_port() { # the lowest port from 5432 up that no cluster is configured for and nothing listens on
  local port=5432
  while pg_lsclusters -h | awk '{print $3}' | grep -qx "$port" || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}

ensure_own_port() { # version cluster: move it when another cluster is configured for the same port
  local port; port=$(cluster_port "$1" "$2")
  if [ "$(pg_lsclusters -h | awk -v p="$port" '$3==p' | wc -l)" -gt 1 ]; then
    pg_ctl_cluster "$1" "$2" stop >/dev/null 2>&1 || true
    local new; new=$(free_port)
    log "cluster $1/$2 shares port $port with another cluster; moving it to $new"
    as_root pg_conftool "$1" "$2" set port "$new"
  fi
}

main() {
  local packages_only=false
  [ "${1:-}" = --packages-only ] && packages_only=true
  if [ -x /usr/lib/postgresql/15/bin/postgres ] && ! has_timescaledb 15; then
    local policy; policy=$(apt-cache policy postgresql-server-dev-15 2>/dev/null || true)
    if [[ "$policy" =~ Candidate:\ [0-9] ]]; then
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-server-dev-15 cmake dpkg-dev gcc make >/dev/null
      $packages_only || build_for_15
    fi
  fi
  if $packages_only && [ -x /usr/lib/postgresql/15/bin/postgres ]; then return; fi
  if [ -x /usr/lib/postgresql/15/bin/postgres ] && has_timescaledb 15; then
    [ -n "$(pg_lsclusters -h | awk '$1==15 && $2=="main"')" ] || as_root pg_createcluster 15 main --port 5432 >/dev/null
    ensure_preload 15 main
    echo "15 main $(pg_lsclusters -h | awk '$1==15 && $2=="main" {print $3}')"
    return
  fi
  log "no PostgreSQL 15 headers here; using PostgreSQL 17 with Debian's timescaledb"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-17 postgresql-17-timescaledb >/dev/null
  $packages_only && return
  local cluster=main
  [ -n "$(cluster_port 17 fleetwatch)" ] && cluster=fleetwatch   # made by an older version of this script
  # Normally the package made 17/main; else let pg_createcluster choose a free port.
  [ -n "$(cluster_port 17 "$cluster")" ] || as_root pg_createcluster 17 "$cluster" >/dev/null
  ensure_own_port 17 "$cluster"
  ensure_preload 17 "$cluster"
  echo "17 $cluster $(cluster_port 17 "$cluster")"
}

main "$@"
