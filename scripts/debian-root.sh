#!/usr/bin/env bash
# Prints the path of a minimal Debian 12 (bookworm) root, made once with debootstrap from the
# Debian archive and cached ($BINHYEN_DEBIAN_ROOT or $HOME/.cache/binhyen/debian12-root).
# Used read-only by the packaging scripts, which copy it before installing anything.
set -euo pipefail
root=${BINHYEN_DEBIAN_ROOT:-$HOME/.cache/binhyen/debian12-root}
if [ ! -f "$root/.binhyen-complete" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  if ! command -v debootstrap >/dev/null 2>&1; then
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap >&2
  fi
  rm -rf "$root.tmp"
  mkdir -p "$(dirname "$root")"
  echo "==> debootstrap --variant=minbase bookworm (once, cached in $root)" >&2
  $SUDO debootstrap --variant=minbase bookworm "$root.tmp" http://deb.debian.org/debian >&2
  $SUDO rm -rf "$root"
  $SUDO mv "$root.tmp" "$root"
  $SUDO touch "$root/.binhyen-complete"
fi
echo "$root"
