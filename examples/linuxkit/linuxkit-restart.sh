#!/bin/sh
# linuxkit-restart SERVICE... — restart LinuxKit services from inside the emissary container.
#
# Meant as a template `command:` (e.g. `command: linuxkit-restart consul`). It runs the host's
# `service` and `ctr` against containerd's socket. The image's org.mobyproject.config label binds
# in what they need, read-only where it can: /usr/bin/service and /usr/bin/ctr, /run (containerd's
# socket) and /containers/services, where LinuxKit keeps each service's OCI spec
# (/containers/services/SERVICE/config.json) and root file system. `service start` reads that
# spec; without it `service restart` stops the service and cannot start it again.
#
# So the spec is checked first: a service whose spec cannot be read is left running (exit 1).
#
# `service restart` sometimes cannot restart a LinuxKit service (the task or container is left
# in a state containerd refuses to reuse). Removing the task and the container and starting the
# service again from its spec works, after short pauses for containerd's locks to clear.
#
# Environment:
#   LINUXKIT_RESTART_SETTLE   seconds to wait between removal steps (default 2)
#   LINUXKIT_NAMESPACE        containerd namespace of LinuxKit services (default services.linuxkit)
#   LINUXKIT_SERVICES_DIR     where the service specs are (default /containers/services)
set -u

settle="${LINUXKIT_RESTART_SETTLE:-2}"
ns="${LINUXKIT_NAMESPACE:-services.linuxkit}"
specs="${LINUXKIT_SERVICES_DIR:-/containers/services}"

if [ "$#" -eq 0 ]; then
  echo "usage: linuxkit-restart SERVICE..." >&2
  exit 2
fi

status=0
for svc in "$@"; do
  case "$svc" in
    ""|-*|*[!A-Za-z0-9_.-]*)
      echo "linuxkit-restart: refusing service name '$svc'" >&2
      status=2
      continue
      ;;
  esac
  if [ ! -r "$specs/$svc/config.json" ]; then
    echo "linuxkit-restart: cannot restart $svc: $specs/$svc/config.json is not readable here (is /containers/services bound into this container?); leaving $svc running" >&2
    status=1
    continue
  fi
  if service restart -path "$specs" "$svc"; then
    echo "linuxkit-restart: restarted $svc" >&2
    continue
  fi
  echo "linuxkit-restart: 'service restart $svc' failed; removing its task and container and starting it again" >&2
  ctr -n "$ns" task rm -f "$svc" || true
  sleep "$settle"
  ctr -n "$ns" container rm "$svc" || true
  sleep "$settle"
  if service start -path "$specs" "$svc"; then
    echo "linuxkit-restart: started $svc again" >&2
  else
    echo "linuxkit-restart: could not start $svc" >&2
    status=1
  fi
done
exit "$status"
