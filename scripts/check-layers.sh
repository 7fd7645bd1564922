#!/usr/bin/env bash
# Keeps the crates' layering (ARCHITECTURE.md): fails when a crate depends, in what it
# ships (normal dependencies, not dev-dependencies), on a crate above it.
#   binhyen-domain    depends on no other crate of the workspace;
#   binhyen-protocol  on the domain only;
#   binhyen-store     never on the sync client, the application layer, the server or a shell;
#   binhyen-sync      never on the application layer, the server or a shell;
#   binhyen-server    never on the station's sync client, the application layer or a shell;
#   binhyen-app       (what both shells share) never on the server or a shell.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
# The workspace crates a package reaches through normal dependencies (itself left out).
reaches() {
  cargo tree --offline --locked -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null \
    | awk '{print $1}' | grep '^binhyen-' | grep -vx "$1" | sort -u || true
}
forbid() {
  local pkg=$1
  shift
  local got
  got=$(reaches "$pkg")
  for bad in "$@"; do
    if grep -qx "$bad" <<<"$got"; then
      echo "layering: $pkg depends on $bad (see ARCHITECTURE.md)" >&2
      status=1
    fi
  done
}
only() {
  local pkg=$1
  shift
  local allowed=" $* "
  for dep in $(reaches "$pkg"); do
    if [[ $allowed != *" $dep "* ]]; then
      echo "layering: $pkg depends on $dep; it may depend only on: $*" >&2
      status=1
    fi
  done
}

only binhyen-domain
only binhyen-protocol binhyen-domain
forbid binhyen-store binhyen-sync binhyen-app binhyen-server binhyen-cli binhyen-desktop
forbid binhyen-sync binhyen-app binhyen-server binhyen-cli binhyen-desktop
forbid binhyen-server binhyen-sync binhyen-app binhyen-cli binhyen-desktop
forbid binhyen-app binhyen-server binhyen-cli binhyen-desktop
# The store's connection is public only for tests: no shipped binary may turn that on.
for bin in binhyen-cli binhyen-desktop binhyen-server; do
  if cargo tree --offline --locked -p "$bin" -e normal,features -i binhyen-store 2>/dev/null \
    | grep -q 'feature "test-support"'; then
    echo "layering: $bin ships binhyen-store with its test-support feature" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "layering: ok"
exit "$status"
