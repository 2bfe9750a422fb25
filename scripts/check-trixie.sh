#!/usr/bin/env bash
# scripts/dev check-trixie [--fresh]: the README's two commands inside a fresh, minimal Debian 13 root.
#
# 1. debootstrap a minimal Debian 13 root from Debian's archive (cached in /var/cache/fleetwatch/trixie-base;
#    --fresh builds it again) and copy it to a throw-away root;
# 2. clone this checkout's HEAD commit into it (uncommitted changes are not part of the check), copy the host's
#    extra certificate authorities and its pip/apt proxy and index configuration;
# 3. with the network: `scripts/setup.sh --packages-only` (Debian packages, .venv from the lock; starts nothing);
# 4. `scripts/dev demo`, then `scripts/dev test -q`, each in a network namespace of its own (loopback only), so the
#    root runs its own Mosquitto and PostgreSQL 17 and the host's broker and database are untouched.
# Everything started inside is killed and every mount undone on exit. Needs root (debootstrap, chroot, ip netns).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
log() { printf 'check-trixie: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, chroot, ip netns)"; exit 1; }

CACHE=/var/cache/fleetwatch
BASE=$CACHE/trixie-base
ROOT=$CACHE/trixie-run
LOGS=$CACHE/check-trixie-logs
MIRROR=${FLEETWATCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
RUN_ID=$$
fresh=false
case "${1:-}" in
  --fresh) fresh=true ;;
  "") ;;
  *) echo "usage: scripts/dev check-trixie [--fresh]" >&2; exit 2 ;;
esac

# --- cleaning up: processes whose root is the throw-away root, mounts under it, our namespaces -----------------
root_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"
  done
  return 0
}
kill_root_processes() {
  local pids
  pids=$(root_pids)
  [ -n "$pids" ] || return 0
  log "stopping what runs inside the root: $(echo $pids)"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 100); do [ -z "$(root_pids)" ] && return 0; sleep 0.1; done
  pids=$(root_pids)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}
unmount_root() {
  local target
  # Deepest first; the phases mount in private mount namespaces, so normally nothing is left here.
  awk -v r="$ROOT" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r target; do umount -l "$target" && log "unmounted $target"; done
}
cleanup() {
  kill_root_processes
  unmount_root
  local ns
  for ns in "fleetwatch-demo-$RUN_ID" "fleetwatch-test-$RUN_ID"; do
    ip netns list 2>/dev/null | grep -qw "$ns" && ip netns del "$ns"
  done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the root -------------------------------------------------------------------------------------------------
command -v debootstrap >/dev/null || {
  log "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
mkdir -p "$CACHE" "$LOGS"
t_start=$(date +%s)
if $fresh || [ ! -f "$BASE/.fleetwatch-complete" ]; then
  log "debootstrap --variant=minbase trixie from $MIRROR (log: $LOGS/debootstrap.log)"
  rm -rf "$BASE.tmp" "$BASE"
  debootstrap --variant=minbase trixie "$BASE.tmp" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 ||
    { tail -n 20 "$LOGS/debootstrap.log" >&2; exit 1; }
  touch "$BASE.tmp/.fleetwatch-complete"
  mv "$BASE.tmp" "$BASE"
  log "debootstrap done in $(($(date +%s) - t_start)) s"
fi
cleanup   # a previous run that died: nothing may still use the old root
rm -rf "$ROOT"
cp -a "$BASE" "$ROOT"

# --- 2. the checkout, certificates, proxy and index configuration -----------------------------------------------
commit=$(git rev-parse HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || log "uncommitted changes are not checked (commit $commit is)"
git clone -q "$SRC" "$ROOT/src/fleetwatch"
git -C "$ROOT/src/fleetwatch" checkout -q --detach "$commit"
mkdir -p "$ROOT/usr/local/share/ca-certificates"
cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -f "$ROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
for f in /etc/pip.conf /etc/xdg/pip "$HOME/.config/pip" "$HOME/.pip"; do
  [ -e "$f" ] || continue
  dest=$ROOT${f/#$HOME//root}
  mkdir -p "$(dirname "$dest")" && cp -a "$f" "$dest"
done
for f in /etc/apt/apt.conf.d/*; do   # apt proxies only: the host's sources are for its own release
  grep -qiE 'Acquire::[a-z]+::Proxy|Acquire::[a-z]+ *\{[^}]*Proxy' "$f" 2>/dev/null && cp -a "$f" "$ROOT/etc/apt/apt.conf.d/"
done
# Packages installed with the network must not start their services there: the phases start them explicitly.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"

passenv=(HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
while IFS='=' read -r name _; do passenv+=("$name=${!name}"); done < <(
  env | grep -E '^(PIP_[A-Z_]+|UV_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|all_proxy|ALL_PROXY)=' || true)

# One phase: a private mount namespace (the mounts die with it), optionally a network namespace, then chroot.
# shellcheck disable=SC2016
MOUNT_AND_CHROOT='
  set -e
  r=$1; shift
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts"
  mount -t tmpfs -o mode=755 tmpfs "$r/run"
  exec chroot "$r" /usr/bin/env -i "$@"
'
phase() { # name netns|- command
  local name=$1 ns=$2 cmd=$3 t0 rc=0 wrap=()
  if [ "$ns" != - ]; then
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    wrap=(ip netns exec "$ns")
  fi
  log "$name: $cmd (log: $LOGS/$name.log)"
  t0=$(date +%s)
  "${wrap[@]}" unshare --mount --propagation private bash -c "$MOUNT_AND_CHROOT" - "$ROOT" "${passenv[@]}" \
    /bin/bash -c "cd /src/fleetwatch && $cmd" >"$LOGS/$name.log" 2>&1 || rc=$?
  kill_root_processes
  [ "$ns" = - ] || ip netns del "$ns"
  times+=("$name exit $rc in $(($(date +%s) - t0)) s")
  printf '\n--- %s: last lines of %s\n' "$name" "$LOGS/$name.log"
  grep -v "^WARNING: Location '" "$LOGS/$name.log" | tail -n 5
  printf -- '--- %s\n' "${times[-1]}"
  return "$rc"
}

# --- 3. and 4. ---------------------------------------------------------------------------------------------------
times=()
status=0
phase setup - 'bash scripts/setup.sh --packages-only && update-ca-certificates >/dev/null && python3 --version' &&
  phase demo "fleetwatch-demo-$RUN_ID" 'scripts/dev demo' &&
  phase test "fleetwatch-test-$RUN_ID" 'scripts/dev test -q' || status=$?
printf '\ncheck-trixie (Debian 13, commit %s): %s; whole run %s s\n' "${commit:0:7}" \
  "$(IFS=';'; echo "${times[*]}" | sed 's/;/; /g')" "$(($(date +%s) - t_start))"
exit "$status"
