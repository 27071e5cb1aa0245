#!/usr/bin/env bash
# Brings a fresh Debian 12 + Node 20 machine to what `npm start` and `npm test` need:
# nats-server, Chromium (the web console's browser test), Go and govmomi's source (for the vCenter simulator), pnpm, the dependencies,
# and the simulator binary. Every step is skipped when already done, so repeat runs are quick.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
# Headless Chromium for the web console's browser test (driven by playwright-core, no browser download).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Colour emoji for its screenshot (the app's messages start with ✅, ❌, 🟢).
[ -d /usr/share/fonts/truetype/noto ] && ls /usr/share/fonts/truetype/noto/NotoColorEmoji* >/dev/null 2>&1 || missing+=(fonts-noto-color-emoji)
[ -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] || missing+=(golang-github-vmware-govmomi-dev)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing with apt: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# promtool, which checks the Prometheus alert rules and every service's /metrics (in `npm test`), comes
# with Debian's prometheus server package. Its install would start a Prometheus daemon: a policy-rc.d
# that refuses every service start (put there only for this install, when none is there already) keeps
# it stopped, and its recommended node exporter is not installed.
if ! command -v promtool >/dev/null 2>&1; then
  log "installing with apt: prometheus (for promtool; its daemon is not started)"
  policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then own_policy=; else own_policy=1; fi
  if [ -n "$own_policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    trap 'as_root rm -f "$policy"' EXIT
  fi
  [ ${#missing[@]} -gt 0 ] || as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -n "$own_policy" ]; then as_root rm -f "$policy"; trap - EXIT; fi
fi

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  log "installing pnpm@$PNPM_VERSION"
  npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null
fi

# pnpm is quick when node_modules already matches the lockfile.
if [ -f pnpm-lock.yaml ]; then
  pnpm install --frozen-lockfile --reporter=silent
else
  pnpm install --no-frozen-lockfile --reporter=silent
fi

# The simulator: rebuilt only when its source is newer than the binary.
bin=.cache/bin/vcsim
if [ ! -x "$bin" ] || [ -n "$(find tools/vcsim -newer "$bin" -name '*.go' 2>/dev/null)" ]; then
  log "building the vCenter simulator (govmomi $(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || echo '?'))"
  mkdir -p .cache/bin .gopath
  GO111MODULE=off GOPATH="/usr/share/gocode:$PWD/.gopath" GOCACHE="$PWD/.cache/go-build" go build -o "$bin" ./tools/vcsim
fi
