#!/usr/bin/env bash
# The test command: formatting, lints (warnings are errors), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
