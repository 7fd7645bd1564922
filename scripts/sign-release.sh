#!/usr/bin/env bash
# Signs a station package for the update channel: writes PACKAGE.minisig beside it, made
# with the release key (minisign) and carrying, signed with it, what the package is
# (name, version, file, size, SHA-256). Run where the release key lives (offline, never on
# the provincial server).
#
#   scripts/sign-release.sh dist/binhyen_0.2.0_amd64.deb                # the release key
#   scripts/sign-release.sh --key packaging/release/dev-release.key PKG   # the development key
#   scripts/sign-release.sh --downgrade PKG    # a release that rolls a newer one back
#
# The key defaults to $BINHYEN_RELEASE_KEY (minisign asks for its password). The programs
# trust the public key they were built with (BINHYEN_RELEASE_PUBLIC_KEY, see
# scripts/package.sh); without it, only the development key.
set -euo pipefail

key="${BINHYEN_RELEASE_KEY:-}"
downgrade=0
package=""
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="$2"; shift 2 ;;
    --downgrade) downgrade=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) package="$1"; shift ;;
  esac
done
die() { echo "sign-release: $*" >&2; exit 1; }
[ -n "$package" ] || die "name the package to sign"
[ -f "$package" ] || die "$package: no such file"
[ -n "$key" ] || die "no key: --key FILE or BINHYEN_RELEASE_KEY"
[ -f "$key" ] || die "$key: no such key file"
command -v minisign >/dev/null || die "minisign is not installed (apt-get install minisign)"

case "$package" in
  *.deb)
    name=$(dpkg-deb -f "$package" Package)
    version=$(dpkg-deb -f "$package" Version)
    ;;
  *) die "$package: only .deb station packages go through the update channel" ;;
esac
[ "$name" = binhyen ] || die "$package is the package '$name', not the station package 'binhyen'"
size=$(stat -c %s "$package")
sha=$(sha256sum "$package" | cut -d' ' -f1)
file=$(basename "$package")
# The signed comment is words of key=value: a name with spaces or '=' could forge one.
[[ $file =~ ^[A-Za-z0-9._+~-]+$ ]] || die "$file: a package's name may hold only letters, digits and . _ + ~ -"
[[ $version =~ ^[A-Za-z0-9.+~-]+$ ]] || die "version '$version' is not one"
comment="binhyen-release v1 package=$name version=$version file=$file size=$size sha256=$sha downgrade=$downgrade"
rm -f "$package.minisig"
minisign -S -s "$key" -m "$package" -x "$package.minisig" -t "$comment" \
  -c "Binh Yen $version" </dev/null >/dev/null \
  || die "minisign could not sign (wrong key password?)"
echo "signed: $package.minisig"
echo "  $comment"
