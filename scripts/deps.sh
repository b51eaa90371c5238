#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine (run as root), and nothing
# when it is already there. Sourced by scripts/run.sh and scripts/test.sh.
set -euo pipefail

# Debian packages the build and tests need: a C compiler and make for mimalloc's and
# libxdp's C sources (cc crate), pkg-config; clang, m4, libelf-dev, zlib1g-dev and
# libbpf-dev for the XDP program (bpf/build.rs) and libbpf/libxdp; iproute2 and ethtool
# for the tests that build network namespaces.
PACKAGES=(gcc make pkg-config clang m4 libelf-dev zlib1g-dev libbpf-dev iproute2 ethtool)
# The real Linux tools that the main job (scripts/topology.sh) and the end-to-end tests
# run on the hosts across the router. Both need root, so without root a missing one is
# only reported (the in-memory demo and the tests that need no root go on without them).
# iperf3's debconf question (start a daemon?) keeps its default, no, under the
# noninteractive frontend. python3 serves files (`python3 -m http.server`) for our HTTP
# client in the tests.
TOOLS=(iputils-ping iputils-tracepath iperf3 curl procps python3)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
missing_tools=()
for p in "${TOOLS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing_tools+=("$p")
done
if [ "$(id -u)" -ne 0 ]; then
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    if [ "${#missing_tools[@]}" -gt 0 ]; then
        echo "deps: not installed (needed only as root, by the live topology and the end-to-end tests): ${missing_tools[*]}" >&2
    fi
elif [ "$((${#missing[@]} + ${#missing_tools[@]}))" -gt 0 ]; then
    echo "deps: installing ${missing[*]} ${missing_tools[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" "${missing_tools[@]}"
fi

if [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "deps: cargo not found: the workspace needs a Rust toolchain >= 1.91 (rustup) with rustfmt and clippy" >&2
    exit 1
fi
