#!/bin/sh
# Container entry point: `<service> [args]`, or SERVICE=<service> with no argument.
# exec: node replaces the shell as PID 1, so it gets SIGTERM itself and drains NATS on stop.
set -eu
name="${1:-${SERVICE:-}}"
[ $# -gt 0 ] && shift
case "$name" in
  gateway | vm-lifecycle | power | remediation | vcenter-proxy | veba-bridge)
    exec node "/app/services/$name/dist/main.js" "$@"
    ;;
  bootstrap)
    exec node /app/deploy/nats/bootstrap.mjs "$@"
    ;;
  *)
    echo "usage: <gateway|vm-lifecycle|power|remediation|vcenter-proxy|veba-bridge|bootstrap> (or set SERVICE)" >&2
    exit 64
    ;;
esac
