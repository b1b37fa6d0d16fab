# shellcheck shell=bash
# Shared paths and helpers for the hack/ scripts. Sourced, never executed.
#
# Build cache (outside the clone, keyed on versions):  ${CJ_CACHE_DIR:-~/.cache/cj-operator}
# Runtime state of the local cluster (pids, data, logs): ${CJ_DEVCLUSTER_DIR:-/tmp/cj-devcluster-<hash>}
# The state directory lives under /tmp so that the unprivileged `postgres` user can reach it
# when the scripts run as root (PostgreSQL refuses to run as root).

set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"
CACHE_DIR="${CJ_CACHE_DIR:-$HOME/.cache/cj-operator}"
_repo_hash="$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-8)"
STATE_DIR="${CJ_DEVCLUSTER_DIR:-/tmp/cj-devcluster-$_repo_hash}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

log() { printf '[devcluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# file_hash FILE... -> first 10 hex digits of the sha256 of the files' contents.
file_hash() { cat "$@" | sha256sum | cut -c1-10; }

# free_port -> an unused TCP port on 127.0.0.1 (asked from the kernel).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for DESCRIPTION SECONDS COMMAND... -> polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.2
  done
  log "$what ready"
}

# pid_alive NAME -> true when STATE_DIR/NAME.pid names a running process.
pid_alive() {
  local f="$STATE_DIR/$1.pid"
  [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}
