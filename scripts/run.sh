#!/usr/bin/env bash
# Builds and opens the Bình Yên desktop app. With nothing set up, it opens a demo station
# (Xã Cư M'gar, Đắk Lắk) in the user's data directory; BINHYEN_DATA_DIR chooses another.
# Installs whatever is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/setup.sh
step "UI build"
(cd ui && npm run build)
step "Desktop app build"
cargo build -p binhyen-desktop --locked
app="$CARGO_TARGET_DIR/debug/binhyen-desktop"

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  # No screen (a server, CI): run under Xvfb, where `import -window root shot.png` can look.
  display=":$((90 + RANDOM % 100))"
  echo "No display: starting Xvfb on $display (screenshot: DISPLAY=$display import -window root shot.png)"
  Xvfb "$display" -screen 0 1366x768x24 -nolisten tcp &
  xvfb=$!
  trap 'kill $xvfb 2>/dev/null' EXIT
  sleep 1
  export DISPLAY="$display"
  export WEBKIT_DISABLE_COMPOSITING_MODE=1
fi
step "Starting $app"
# Developers get the demo station at once; a laptop with no station otherwise opens on the
# set-up screen (a provisioning file, or the demo).
BINHYEN_DEMO=1 "$app"
