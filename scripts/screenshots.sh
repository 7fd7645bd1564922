#!/usr/bin/env bash
# Runs the real app under a private Xvfb on a fresh demo station and saves a screenshot of
# every screen (and the journeys' own screenshots), so that anyone can look at them all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh >/dev/null
(cd ui && npm run build >/dev/null)
cargo build -p binhyen-desktop -p binhyen-cli -p binhyen-server --locked
env -u DISPLAY -u WAYLAND_DISPLAY cargo test -p binhyen-e2e --locked --test it -- \
  journeys::every_screen_opens_without_error --exact
dir="$CARGO_TARGET_DIR/debug/e2e-screenshots"
echo
echo "Screenshots of every screen: $dir/screens"
ls -1 "$dir/screens"
