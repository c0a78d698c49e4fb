#!/bin/sh
# linuxkit-restart SERVICE... — restart LinuxKit services from inside the emissary container.
#
# Meant as a template `command:` (e.g. `command: linuxkit-restart consul`). It needs the host's
# `service` and `ctr` binaries and containerd's socket, which the image's org.mobyproject.config
# label binds in (/usr/bin/service, /usr/bin/ctr, /run).
#
# `service restart` sometimes cannot restart a LinuxKit service (the task or container is left
# in a state containerd refuses to reuse). Removing the task and the container and starting the
# service again from its bundle works, after short pauses for containerd's locks to clear.
#
# Environment:
#   LINUXKIT_RESTART_SETTLE   seconds to wait between removal steps (default 2)
#   LINUXKIT_NAMESPACE        containerd namespace of LinuxKit services (default services.linuxkit)
set -u

settle="${LINUXKIT_RESTART_SETTLE:-2}"
ns="${LINUXKIT_NAMESPACE:-services.linuxkit}"

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
  if service restart "$svc"; then
    echo "linuxkit-restart: restarted $svc" >&2
    continue
  fi
  echo "linuxkit-restart: 'service restart $svc' failed; removing its task and container and starting it again" >&2
  ctr -n "$ns" task rm -f "$svc" || true
  sleep "$settle"
  ctr -n "$ns" container rm "$svc" || true
  sleep "$settle"
  if service start "$svc"; then
    echo "linuxkit-restart: started $svc again" >&2
  else
    echo "linuxkit-restart: could not start $svc" >&2
    status=1
  fi
done
exit "$status"
