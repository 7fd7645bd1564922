#!/usr/bin/env bash
# Runs every test of Bình Yên: the UI's checks and unit tests, formatting and lints, the
# Rust tests (store, CLI, desktop), and the WebDriver journeys in the real app under Xvfb.
# Installs whatever is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
started=$(date +%s)

scripts/setup.sh

step "UI: build, svelte-check, lint, unit tests"
(cd ui && npm run build && npm run check && npm run lint && npm test)

step "Rust: formatting"
cargo fmt --all --check

step "Rust: clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Desktop app build (driven by the WebDriver journeys)"
cargo build -p binhyen-desktop --locked

step "Rust tests (store, CLI, desktop, WebDriver journeys under a private Xvfb)"
bindings=$(mktemp -d)
trap 'rm -rf "$bindings"' EXIT
# The journeys start their own Xvfb when DISPLAY is unset, so a developer's desktop is left alone.
env -u DISPLAY -u WAYLAND_DISPLAY TS_RS_EXPORT_DIR="$bindings" cargo test --workspace --locked

step "IPC types: the TypeScript generated from Rust matches ui/src/lib/bindings"
if ! diff -r "$bindings" ui/src/lib/bindings; then
  echo "ui/src/lib/bindings is stale: run 'cargo test --workspace' and commit the result." >&2
  exit 1
fi

echo
echo "All tests passed in $(( $(date +%s) - started )) s."
