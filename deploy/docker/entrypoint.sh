#!/bin/sh
# Container entry point: `<service> [args]`, or SERVICE=<service> with no argument.
# exec: node replaces the shell as PID 1, so it gets SIGTERM itself and drains NATS on stop.
set -eu
# V8 heap limits (deploy/node-options, copied beside this script) first, so flags set in NODE_OPTIONS by the operator win.
NODE_OPTIONS="$(cat /app/deploy/docker/node-options) ${NODE_OPTIONS:-}"
export NODE_OPTIONS
name="${1:-${SERVICE:-}}"
[ $# -gt 0 ] && shift
case "$name" in
  gateway | vm-lifecycle | power | lease-keeper | remediation | vcenter-proxy | veba-bridge)
    exec node "/app/services/$name/dist/main.js" "$@"
    ;;
  bootstrap)
    exec node /app/deploy/nats/bootstrap.mjs "$@"
    ;;
  *)
    echo "usage: <gateway|vm-lifecycle|power|lease-keeper|remediation|vcenter-proxy|veba-bridge|bootstrap> (or set SERVICE)" >&2
    exit 64
    ;;
esac
