#!/usr/bin/env bash
# Re-resolve requirements.lock deliberately (run as `scripts/dev lock [--upgrade | --upgrade-package NAME]…`).
#
# One universal lock for every Python >= 3.11 (Debian 12: 3.11, Debian 13: 3.13), with hashes, from PyPI only,
# written by uv. Pins already in the lock are kept unless --upgrade / --upgrade-package asks otherwise;
# --fork-strategy fewest picks one version per package for all Pythons (the default would fork numpy/scipy
# at 3.12, which is what broke mypy on Debian 13).
# Refused: a package pinned twice, or one without wheels for CPython 3.11 and 3.13 on x86_64 and aarch64
# (except the pure-Python sdists listed in SDIST_OK). Then .venv is synced from the new lock.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'lock: %s\n' "$*" >&2; }

UV=.venv/bin/uv
[ -x "$UV" ] || { log "no $UV: run scripts/setup.sh first (uv is pinned in the dev extra)"; exit 1; }
# uv does not read pip's configuration: trust the system's CA bundle (it holds any local proxy's CA).
[ -f /etc/ssl/certs/ca-certificates.crt ] && export SSL_CERT_FILE=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
INDEX=https://pypi.org/simple
SDIST_OK=(prcoords)   # pure Python, published as an sdist only
PYTHONS=(3.11 3.13)
PLATFORMS=(x86_64-manylinux_2_28 aarch64-manylinux_2_28)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f requirements.lock ] && cp requirements.lock "$work/requirements.lock"
log "resolving (keeping existing pins${*:+; $*})"
"$UV" pip compile pyproject.toml --extra dev --universal --fork-strategy fewest --generate-hashes \
  --python-version 3.11 --index-url "$INDEX" --no-config --quiet \
  --custom-compile-command "scripts/dev lock" -o "$work/requirements.lock" "$@"

pins() { grep -E '^[A-Za-z0-9]' "$1" | sed -E 's/ *\\$//; s/ *;.*//' | tr 'A-Z_.' 'a-z--' | sort; }
pins "$work/requirements.lock" > "$work/pins"
twice=$(sed 's/==.*//' "$work/pins" | uniq -d)
if [ -n "$twice" ]; then
  log "refused: pinned more than once (a fork per Python version): $(echo $twice)"
  exit 1
fi

# Every pin must come as a wheel for each interpreter and platform the project runs on.
binary=$(sed 's/==.*//' "$work/pins" | grep -vxF -f <(printf '%s\n' "${SDIST_OK[@]}") | paste -sd, -)
for py in "${PYTHONS[@]}"; do
  for platform in "${PLATFORMS[@]}"; do
    if ! "$UV" pip compile pyproject.toml --extra dev --python-version "$py" --python-platform "$platform" \
        --only-binary "$binary" -c "$work/requirements.lock" \
        --index-url "$INDEX" --no-config --quiet --no-header --no-annotate -o "$work/target.txt" 2>"$work/err"; then
      log "refused: no wheels for CPython $py on $platform:"; cat "$work/err" >&2; exit 1
    fi
    # Same versions as the universal lock, nothing else.
    other=$(comm -23 <(pins "$work/target.txt") "$work/pins")
    if [ -n "$other" ]; then
      log "refused: CPython $py on $platform resolves other versions than the lock: $(echo $other)"; exit 1
    fi
  done
done
log "wheels found for CPython ${PYTHONS[*]} on ${PLATFORMS[*]%%-*} (sdist only: ${SDIST_OK[*]})"

if cmp -s "$work/requirements.lock" requirements.lock; then
  log "requirements.lock unchanged ($(wc -l < "$work/pins") pins)"
else
  cp "$work/requirements.lock" requirements.lock
  log "requirements.lock written ($(wc -l < "$work/pins") pins); review the diff and run scripts/dev test"
fi
bash scripts/setup.sh
.venv/bin/python scripts/check_lock.py
