#!/bin/sh
# Cài Bình Yên trên máy Debian 12 không có mạng, từ thư mục này (bộ cài offline-kit).
# Chạy: sudo sh cai-dat.sh   — chạy lại nhiều lần cũng an toàn.
set -eu
cd "$(dirname "$0")"
say() { printf '%s\n' "$*"; }
fail() {
  say "LỖI: $*"
  say "Không có gì bị thay đổi thêm. Xem HUONG-DAN.pdf, mục \"Khi có bước không thành\"."
  exit 1
}

[ "$(id -u)" = 0 ] || fail "cần quyền quản trị: hãy chạy  sudo sh cai-dat.sh"

say "1/4 Kiểm tra mã SHA-256 của từng tệp trong bộ cài…"
command -v sha256sum >/dev/null 2>&1 || fail "máy thiếu lệnh sha256sum (gói coreutils)."
sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1 ||
  fail "tệp bị hỏng hoặc bị sửa. Hãy chép lại thư mục offline-kit từ bản gốc."

say "2/4 Kiểm tra hệ điều hành…"
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
[ "$codename" = bookworm ] ||
  fail "máy này không phải Debian 12 (bookworm) mà là '${codename:-không rõ}'. Bộ cài này chỉ dùng cho Debian 12; máy Ubuntu cần bộ cài dựng cho Ubuntu."
[ "$(dpkg --print-architecture)" = amd64 ] || fail "bộ cài này dành cho máy 64-bit (amd64)."

say "3/4 Đọc danh mục gói của bộ cài (không cần mạng)…"
# apt sees only this kit, as a local repository: never the laptop's own lists, whose
# packages it would try to download. It installs only what is missing, in the order the
# dependencies need, and never replaces a newer package the laptop already has.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial"
chmod -R 0755 "$tmp"
echo "deb [trusted=yes] file:$PWD ./" >"$tmp/sources.list"
apt_kit() {
  DEBIAN_FRONTEND=noninteractive apt-get -q -o Dir::Etc::SourceList="$tmp/sources.list" \
    -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$tmp/lists" \
    -o Dpkg::Options::=--force-confold "$@"
}
apt_kit update >"$tmp/update.log" 2>&1 || { cat "$tmp/update.log"; fail "không đọc được danh mục gói của bộ cài."; }

say "4/4 Cài Bình Yên và các gói nó cần mà máy còn thiếu…"
apt_kit install -y --no-install-recommends binhyen >"$tmp/install.log" 2>&1 || {
  tail -n 20 "$tmp/install.log"
  fail "apt không cài được các gói (xem thông báo ở trên)."
}
fresh=$(sed -n 's/.* \([0-9][0-9]*\) newly installed.*/\1/p' "$tmp/install.log" | head -n 1)
say "    ${fresh:-0} gói mới được cài."
say "Đã cài xong Bình Yên $(dpkg-query -W -f='${Version}' binhyen)."
say "Bước tiếp theo: đăng ký trạm bằng tệp cấp phép (xem HUONG-DAN.pdf, bước 3)."
