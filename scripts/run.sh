#!/usr/bin/env bash
# The main job. As root: build in release mode, then route between two Linux hosts in
# network namespaces (h1 -- dataplane run -- h2, on AF_XDP, falling back to AF_PACKET)
# and show ping over IPv4 and IPv6, tracepath and iperf3 throughput through the router,
# and the router's counters (scripts/topology.sh; its options, such as --driver afpacket
# or --seconds 5, pass through). Without root, or with --memory: the same topology as
# three stack instances wired in memory on a virtual clock (`dataplane demo`).
set -euo pipefail
cd "$(dirname "$0")/.."

memory=""
if [ "${1:-}" = "--memory" ]; then
    memory="--memory was given"
    shift
elif [ "$(id -u)" -ne 0 ]; then
    memory="not root: the live topology needs network namespaces and AF_XDP"
fi

. scripts/deps.sh
if [ -n "$memory" ]; then
    echo "run: the in-memory demo ($memory)"
    cargo run --release -p dataplane -- demo
    exit 0
fi
cargo build --release -p dataplane
exec bash scripts/topology.sh --binary target/release/dataplane "$@"
