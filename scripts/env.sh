# Sourced by the scripts: where cargo builds and finds its tools.
# The target directory lives outside the clone, so a fresh clone on a machine that has
# built before reuses its work.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/binhyen/target}"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { printf '\n==> %s\n' "$*"; }
