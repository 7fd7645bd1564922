#!/usr/bin/env bash
# The offline kit (scripts/package.sh): everything a Debian 12 laptop with no network needs
# to install the station package STATION_DEB, into OUT_DIR. The dependency packages are
# what the station package needs beyond a minimal Debian 12 (a debootstrap minbase root,
# made once and cached: $BINHYEN_DEBIAN_ROOT or $HOME/.cache/binhyen/debian12-root).
# Usage: scripts/offline-kit.sh STATION_DEB OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
deb=$(realpath "$1")
out=$2
root=$(scripts/debian-root.sh)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

rm -rf "$out"
mkdir -p "$out/debs"
work="$root/tmp/binhyen-kit"
$SUDO rm -rf "$work"
$SUDO mkdir -p "$work/archives/partial" "$work/lists/partial"
$SUDO cp "$deb" "$work/station.deb"
$SUDO cp /etc/resolv.conf "$root/etc/resolv.conf"
# What apt would fetch to install the station package on the bare system: the kit's debs.
# Its lists and downloads stay in a scratch directory: the cached root is left as it was.
apt_in_root() {
  $SUDO chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -qq \
    -o Dir::State::Lists=/tmp/binhyen-kit/lists -o Dir::Cache::archives=/tmp/binhyen-kit/archives \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= "$@"
}
apt_in_root update
apt_in_root install -y --download-only --no-install-recommends /tmp/binhyen-kit/station.deb >/dev/null
cp "$work/archives/"*.deb "$out/debs/"
$SUDO rm -rf "$work"
cp "$deb" "$out/"
# The kit is a local apt repository: cai-dat.sh installs from its index.
command -v dpkg-scanpackages >/dev/null 2>&1 ||
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
(cd "$out" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
install -m 0755 packaging/cai-dat.sh "$out/cai-dat.sh"
# Printed from packaging/HUONG-DAN.md by the store test that keeps it current.
cp packaging/HUONG-DAN.pdf "$out/HUONG-DAN.pdf"
(cd "$out" && find . -type f ! -name SHA256SUMS ! -name cai-dat.sh -printf '%P\n' | sort | xargs sha256sum >SHA256SUMS)
echo "offline kit: $(ls "$out/debs" | wc -l) dependency packages, $(du -sh "$out" | cut -f1) in $out"
