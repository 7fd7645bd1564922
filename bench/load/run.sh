#!/usr/bin/env bash
# The server under a province's load (issue 24): 200 stations syncing at once against
# PostgreSQL over loopback. Run by hand, not in CI; prints figures. Options go to
# binhyen-load (--stations, --tips, --files, --pg …; --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
cargo build --release --locked -p binhyen-server -p binhyen-load
exec "$CARGO_TARGET_DIR/release/binhyen-load" "$@"
