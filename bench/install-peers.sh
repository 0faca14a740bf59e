#!/bin/sh
# Install the peers the HTTP benchmark runs beside agentlog, from Debian packages (run as root):
#   wrk (a C HTTP load generator), etcd-server (etcd 3.4 and its HTTP/JSON gateway),
#   redis-server and redis-tools (redis-benchmark).
# Benchmarks only: tests never install anything. Services are not enabled: the benchmark starts
# its own etcd and Redis processes on loopback ports, in temporary directories.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    echo "install-peers.sh: run as root (apt-get install)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends wrk etcd-server etcd-client redis-server redis-tools
for unit in etcd redis-server; do
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
done
wrk --version 2>&1 | head -n 1 || true
etcd --version | head -n 1
redis-server --version
