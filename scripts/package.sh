#!/usr/bin/env bash
# Builds what an installer carries to a station, and the provincial server's package, into
# dist/ (README, "Packages"):
#   binhyen_VERSION_amd64.deb, binhyen-VERSION.x86_64.rpm   the desktop app and `binhyen`
#   binhyen-server_VERSION_amd64.deb                          the server, its systemd unit
#   offline-kit/                                              a Debian 12 laptop with no network:
#       debs/ (what the station package needs beyond a minimal Debian 12), the station
#       package, cai-dat.sh (checks the sums, installs in order, safe to run twice),
#       HUONG-DAN.pdf (the installer's page), SHA256SUMS
#   SHA256SUMS                                                for all of it
# BINHYEN_VERSION=x.y.z stamps that version into every binary and package.
# The dependency packages come from a minimal Debian 12 root made once with debootstrap and
# cached in $HOME/.cache/binhyen (the Debian archive must be reachable the first time);
# BINHYEN_NO_KIT=1 skips the offline kit; BINHYEN_STATION_ONLY=1 builds only the station's
# .deb (the update test's second version); BINHYEN_OUT names the folder (default dist).
# BINHYEN_RELEASE_PUBLIC_KEY (minisign, base64) is the release key the programs trust for
# updates (scripts/sign-release.sh); it is required, unless BINHYEN_DEV_RELEASE_KEY=1 builds
# packages that trust only the development key (the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# --next: the version after this one's station package, into dist-next/ (the update test's
# second version), built in a target directory of its own so that neither version's build
# undoes the other's.
if [ "${1:-}" = --next ]; then
  current=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
  current=${BINHYEN_VERSION:-$current}
  export BINHYEN_VERSION="${current%.*}.$((${current##*.} + 1))"
  export BINHYEN_OUT=dist-next BINHYEN_STATION_ONLY=1
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR-next"
fi

version=${BINHYEN_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)}
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "BINHYEN_VERSION must read x.y.z (three numbers), not '$version'" >&2
  exit 1
fi
export BINHYEN_VERSION=$version
out=${BINHYEN_OUT:-dist}
rm -rf "$out"
mkdir -p "$out"
rel="$CARGO_TARGET_DIR/release"

step "UI build"
(cd ui && npm run build)

if [ -z "${BINHYEN_RELEASE_PUBLIC_KEY:-}" ]; then
  if [ "${BINHYEN_DEV_RELEASE_KEY:-}" != 1 ]; then
    echo "BINHYEN_RELEASE_PUBLIC_KEY is not set: give the release key's public half, or BINHYEN_DEV_RELEASE_KEY=1 for packages that trust only the development key (tests; never to ship)" >&2
    exit 1
  fi
  echo "note: these packages trust only the development release key (packaging/release/): not fit to ship" >&2
fi
only_station=${BINHYEN_STATION_ONLY:-}
bundles=deb,rpm
[ -z "$only_station" ] || bundles=deb
step "Release build $version: the desktop app, binhyen${only_station:+ (the station only)}"
if [ -n "$only_station" ]; then
  cargo build --release --locked -p binhyen-desktop -p binhyen-cli
else
  cargo build --release --locked -p binhyen-desktop -p binhyen-cli -p binhyen-server
fi

step "Station packages (.deb, .rpm)"
config=$(mktemp --suffix=.json)
trap 'rm -f "$config"' EXIT
cat >"$config" <<JSON
{
  "productName": "binhyen",
  "version": "$version",
  "bundle": {
    "linux": {
      "deb": {
        "files": { "/usr/bin/binhyen": "$rel/binhyen" },
        "desktopTemplate": "$PWD/packaging/station/binhyen.desktop",
        "postRemoveScript": "$PWD/packaging/station/postrm.sh"
      },
      "rpm": {
        "files": { "/usr/bin/binhyen": "$rel/binhyen" },
        "desktopTemplate": "$PWD/packaging/station/binhyen.desktop",
        "depends": ["webkit2gtk4.1", "glibc-langpack-vi"],
        "postInstallScript": "$PWD/scripts/deb-postinst.sh",
        "postRemoveScript": "$PWD/packaging/station/postrm.sh"
      }
    }
  }
}
JSON
# `tauri bundle` packs the binary built above: `tauri build` would build the desktop app
# alone, with other features for the shared crates, and so compile it all a second time.
rm -rf "$rel/bundle"
ui/node_modules/.bin/tauri bundle --ci --bundles "$bundles" --config "$config"
cp "$rel/bundle/deb/binhyen_${version}_amd64.deb" "$out/binhyen_${version}_amd64.deb"
if [ -n "$only_station" ]; then
  ls -l "$out"
  echo "Station package of $version in $out/"
  exit 0
fi
cp "$rel/bundle/rpm/binhyen-${version}-1.x86_64.rpm" "$out/binhyen-${version}.x86_64.rpm"

step "Server package (.deb)"
root=$(mktemp -d)
trap 'rm -f "$config"; rm -rf "$root"' EXIT
pkg="$root/binhyen-server"
install -D -m 0755 "$rel/binhyen-server" "$pkg/usr/bin/binhyen-server"
install -D -m 0644 packaging/server/binhyen-server.service "$pkg/lib/systemd/system/binhyen-server.service"
install -D -m 0640 packaging/server/server.env "$pkg/etc/binhyen-server/server.env"
install -D -m 0644 packaging/server/binhyen-server-backup.service "$pkg/lib/systemd/system/binhyen-server-backup.service"
install -D -m 0644 packaging/server/binhyen-server-backup.timer "$pkg/lib/systemd/system/binhyen-server-backup.timer"
install -D -m 0755 packaging/server/backup.sh "$pkg/usr/lib/binhyen-server/backup.sh"
install -D -m 0640 packaging/server/backup.env "$pkg/etc/binhyen-server/backup.env"
install -D -m 0644 crates/store/data/admin-units-2025.csv "$pkg/usr/share/binhyen-server/admin-units-2025.csv"
install -D -m 0644 crates/store/data/ATTRIBUTION.md "$pkg/usr/share/doc/binhyen-server/ATTRIBUTION.md"
install -D -m 0644 README.md "$pkg/usr/share/doc/binhyen-server/README"
mkdir -p "$pkg/DEBIAN"
install -m 0755 packaging/server/postinst.sh "$pkg/DEBIAN/postinst"
install -m 0755 packaging/server/prerm.sh "$pkg/DEBIAN/prerm"
install -m 0755 packaging/server/postrm.sh "$pkg/DEBIAN/postrm"
printf '%s\n' /etc/binhyen-server/server.env /etc/binhyen-server/backup.env >"$pkg/DEBIAN/conffiles"
deps=$(dpkg-shlibdeps -O -e "$pkg/usr/bin/binhyen-server" 2>/dev/null | sed -n 's/^shlibs:Depends=//p' || true)
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: binhyen-server
Version: $version
Architecture: amd64
Maintainer: Bình Yên <binhyen@localhost>
Depends: ${deps:-libc6, libssl3}, adduser
Section: net
Priority: optional
Installed-Size: $(du -sk "$pkg" | cut -f1)
Description: Bình Yên provincial server
 The provincial police server that Bình Yên's commune stations synchronise with:
 an embedded SQLite database by default, PostgreSQL for production.
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out/binhyen-server_${version}_amd64.deb" >/dev/null

if [ "${BINHYEN_NO_KIT:-}" != 1 ]; then
  step "Offline kit for Debian 12"
  scripts/offline-kit.sh "$out/binhyen_${version}_amd64.deb" "$out/offline-kit"
fi

step "SHA256SUMS"
(cd "$out" && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum >SHA256SUMS)
ls -l "$out"
echo "Packages of $version in $out/"
