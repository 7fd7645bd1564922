#!/usr/bin/env bash
# The sync benchmark (issue: provincial server and sync): Bình Yên against PouchDB on the
# same 10,000 records, and a month of work over an emulated rural link. Prints figures.
# Needs root (network namespace and tc netem); installs PouchDB from npm into bench/pouchdb.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v tc >/dev/null || apt-get install -y iproute2
# Where the kernel has no netem, the rural link is built with nftables (random drop).
command -v nft >/dev/null || apt-get install -y nftables
cargo build --release --locked -p binhyen-cli -p binhyen-server
(cd bench/pouchdb && npm ci --no-audit --no-fund)
exec python3 bench/sync_bench.py
