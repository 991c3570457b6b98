#!/usr/bin/env bash
# Start Debian's Docker engine where nothing else does (no systemd, as in CI containers): dockerd
# in the background, its pid in /run/mlplatform-dockerd.pid, ready when `docker info` answers.
# Does nothing when an engine already answers. Needs root. Stop it with local/stop-engine.sh.
set -euo pipefail
DOCKER="${DOCKER:-/usr/bin/docker}"
PIDFILE=/run/mlplatform-dockerd.pid
if "$DOCKER" info >/dev/null 2>&1; then
    echo "docker engine: already running"
    exit 0
fi
command -v dockerd >/dev/null || { echo "docker engine: dockerd not installed (docker.io)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "docker engine: starting dockerd needs root" >&2; exit 1; }
mkdir -p /var/log
# The host's interface has MTU 1400 here; Docker's default of 1500 would drop large packets.
mtu="$(cat /sys/class/net/eth0/mtu 2>/dev/null || echo 1500)"
setsid dockerd --mtu "$mtu" --pidfile "$PIDFILE" >>/var/log/mlplatform-dockerd.log 2>&1 </dev/null &
for _ in $(seq 60); do
    if "$DOCKER" info >/dev/null 2>&1; then
        echo "docker engine: started (pid $(cat "$PIDFILE"))"
        exit 0
    fi
    sleep 0.5
done
echo "docker engine: did not answer within 30 s; see /var/log/mlplatform-dockerd.log" >&2
exit 1
