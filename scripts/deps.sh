#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine (run as root), and nothing
# when it is already there. Sourced by scripts/run.sh and scripts/test.sh.
set -euo pipefail

# Debian packages the build and tests need: a C compiler and make for mimalloc's and
# libxdp's C sources (cc crate), pkg-config; clang, m4, libelf-dev, zlib1g-dev and
# libbpf-dev for the XDP program (bpf/build.rs) and libbpf/libxdp; iproute2 and ethtool
# for the tests that build network namespaces; iputils-ping, iputils-tracepath and iperf3
# for the real Linux tools the end-to-end tests and scripts/topology.sh run across the
# router (iperf3's debconf question, whether to start a daemon, is left at its default
# "no" by the noninteractive frontend).
PACKAGES=(gcc make pkg-config clang m4 libelf-dev zlib1g-dev libbpf-dev iproute2 ethtool
    iputils-ping iputils-tracepath iperf3)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "deps: cargo not found: the workspace needs a Rust toolchain >= 1.85 (rustup) with rustfmt and clippy" >&2
    exit 1
fi
