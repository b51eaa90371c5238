#!/usr/bin/env bash
# The main job: build in release mode and run the dataplane demo (three stack instances
# wired together in memory: neighbor resolution, ping, forwarding, traceroute, ICMP).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
cargo run --release -p dataplane -- demo "$@"
