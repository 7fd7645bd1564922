#!/usr/bin/env bash
# Signs a provincial server's anchor (the key that certifies the communes' identity keys)
# with the release key, for the province it serves: stations trust the anchor only with
# this signature. Run where the release key lives (offline, never on the provincial server).
#
#   binhyen-server anchor --db …                       # on the server: prints the anchor (hex)
#   scripts/sign-anchor.sh 66 HEX                        # writes anchor-66.minisig
#   scripts/sign-anchor.sh --key packaging/release/dev-release.key 66 HEX
#   binhyen-server anchor --db … --province 66 --signature anchor-66.minisig
#
# The key defaults to $BINHYEN_RELEASE_KEY (minisign asks for its password).
set -euo pipefail

key="${BINHYEN_RELEASE_KEY:-}"
out_dir="."
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="$2"; shift 2 ;;
    --out-dir) out_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
die() { echo "sign-anchor: $*" >&2; exit 1; }
[ ${#args[@]} -eq 2 ] || die "give the province's code and the anchor (hex)"
province="${args[0]}"
anchor="${args[1]}"
[[ $province =~ ^[0-9]{2}$ ]] || die "'$province' is not a province's code (two digits)"
[[ $anchor =~ ^[0-9a-f]{64}$ ]] || die "'$anchor' is not an anchor (64 hex digits, as binhyen-server anchor prints it)"
[ -n "$key" ] || die "no key: --key FILE or BINHYEN_RELEASE_KEY"
[ -f "$key" ] || die "$key: no such key file"
command -v minisign >/dev/null || die "minisign is not installed (apt-get install minisign)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s' "$anchor" > "$work/anchor"
out="$out_dir/anchor-$province.minisig"
minisign -S -s "$key" -m "$work/anchor" -x "$out" \
  -t "binhyen-anchor v1 province=$province anchor=$anchor" -c "Binh Yen anchor $province" \
  </dev/null >/dev/null || die "minisign could not sign (wrong key password?)"
echo "signed: $out"
