#!/usr/bin/env bash
# Runs every test of Bình Yên: the UI's checks and unit tests, formatting and lints, the
# Rust tests (store, CLI, desktop), the WebDriver journeys in the real app under Xvfb, and
# the packages, built and installed in a fresh Debian 12 root (scripts/test-package.sh).
# Installs whatever is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# The packages built for the tests trust the development release key.
export BINHYEN_DEV_RELEASE_KEY=1
started=$(date +%s)

scripts/setup.sh
# Where setup had to give PostgreSQL a password, it says which URL to use.
if [ -f "$HOME/.cache/binhyen/pg.env" ]; then source "$HOME/.cache/binhyen/pg.env"; fi

step "UI: build, svelte-check, lint, unit tests"
ui_log=$(mktemp)
(cd ui && npm run build && npm run check && npm run lint && npm test) 2>&1 | tee "$ui_log"
ui_passed=$(sed 's/\x1b\[[0-9;]*m//g' "$ui_log" | grep -oE 'Tests +[0-9]+ passed' | grep -oE '[0-9]+' | tail -1)
rm -f "$ui_log"

step "Rust: formatting"
cargo fmt --all --check

step "Rust: the crates' layering"
bash scripts/check-layers.sh

step "Rust: clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Binaries the end-to-end tests drive: the desktop app, the CLI, the server"
cargo build -p binhyen-desktop -p binhyen-cli -p binhyen-server --locked

step "Rust tests (store, CLI, desktop, WebDriver journeys under a private Xvfb)"
bindings=$(mktemp -d)
trap 'rm -rf "$bindings"' EXIT
# The journeys start their own Xvfb when DISPLAY is unset, so a developer's desktop is left alone.
log=$(mktemp)
trap 'rm -rf "$bindings" "$log"' EXIT
# --lib --bins --tests: every test binary, not the benchmarks (they print figures and take
# minutes) and not doc-tests (there are none).
env -u DISPLAY -u WAYLAND_DISPLAY TS_RS_EXPORT_DIR="$bindings" \
  cargo test --workspace --locked --lib --bins --tests 2>&1 | tee "$log"
rust_passed=$(grep -E '^test result: ok' "$log" | awk '{s += $4} END {print s + 0}')

step "IPC types: the TypeScript generated from Rust matches ui/src/lib/bindings"
if ! diff -r "$bindings" ui/src/lib/bindings; then
  echo "ui/src/lib/bindings is stale: run 'cargo test --workspace' and commit the result." >&2
  exit 1
fi

step "The API against its own description: schemathesis, a short run on both backends"
# scripts/schemathesis.sh (a few hundred requests per backend here; more by hand, EXAMPLES=500).
EXAMPLES=25 SEED="$(date +%s)" bash scripts/schemathesis.sh

step "Packages: built, installed in a fresh Debian 12 root from the offline kit, checked"
# As root (chroot, mounts); a developer's own build stays theirs, only the install is sudo.
if [ "$(id -u)" = 0 ]; then
  scripts/test-package.sh
else
  scripts/package.sh
  scripts/package.sh --next
  sudo env "PATH=$PATH" CARGO_TARGET_DIR="$CARGO_TARGET_DIR" scripts/test-package.sh --no-build
fi

echo
echo "All tests passed in $(( $(date +%s) - started )) s: Rust $rust_passed, UI $ui_passed."
echo "Total: $(( rust_passed + ui_passed )) passed, 0 failed"
