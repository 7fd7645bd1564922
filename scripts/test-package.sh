#!/usr/bin/env bash
# Proves the packages as an installer and a province's IT staff would use them (README,
# "Packages"): builds them (scripts/package.sh; --no-build uses dist/ as it is), then in a
# fresh Debian 12 root (a copy of the cached debootstrap root, scripts/debian-root.sh):
#  - the station: the offline kit's cai-dat.sh with the network cut (unshare -n), twice;
#    `binhyen --version`, `binhyen init --demo`, `binhyen doctor`; the installed desktop app
#    opened under Xvfb with nothing set for it (its first screen, the set-up screen, drawn;
#    a screenshot kept);
#    removed (the data stays) and purged (it says where the data is);
#  - the server: installed, its unit checked with `systemd-analyze verify`, the binary started
#    as the unit starts it (its user, its settings file), /healthz, stopped with SIGTERM;
#  - an update: the next version's station package (built with BINHYEN_VERSION, in a target
#    directory of its own), signed with the development release key, published on the
#    installed server, downloaded by the installed station at sync, checked and installed
#    with no network; then a release whose installation fails leaves that version working.
# Prints the sizes and how long each step took. Needs root (chroot, mounts) and, the first
# time, the Debian archive (debootstrap, the kit's packages).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# The packages built for the tests trust the development release key.
export BINHYEN_DEV_RELEASE_KEY=1
[ "$(id -u)" = 0 ] || { echo "test-package.sh needs root (chroot): sudo $0" >&2; exit 1; }

started=$(date +%s)
if [ "${1:-}" != --no-build ]; then
  scripts/package.sh
  scripts/package.sh --next
fi
version=$(ls dist/binhyen_*_amd64.deb | sed 's/.*binhyen_\(.*\)_amd64.deb/\1/')
next=$(ls dist-next/binhyen_*_amd64.deb | sed 's/.*binhyen_\(.*\)_amd64.deb/\1/')
shots="$CARGO_TARGET_DIR/package-screenshots"
mkdir -p "$shots"

for tool in Xvfb xwininfo; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/setup.sh" >&2; exit 1; }
done
if [ ! -x /usr/bin/import ]; then
  step "apt-get install imagemagick (the first screen's screenshot)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends imagemagick >/dev/null
fi

fail() {
  echo "test-package: FAILED: $*" >&2
  exit 1
}

base=$(scripts/debian-root.sh)
scratch=$(mktemp -d /var/tmp/binhyen-package.XXXXXX)
root="$scratch/root"
xvfb=""
cleanup() {
  [ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null || true
  for m in tmp/.X11-unix dev/shm dev/pts dev sys proc; do
    umount -l "$root/$m" 2>/dev/null || true
  done
  rm -rf "$scratch"
}
trap cleanup EXIT

step "A fresh Debian 12 root (copy of $base)"
t0=$(date +%s)
cp -a "$base" "$root"
cp -r dist/offline-kit "$root/opt/offline-kit"
cp dist/binhyen-server_*_amd64.deb "$root/opt/"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs tmpfs "$root/dev/shm"
in_root() { chroot "$root" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

step "Station: the offline kit with no network, twice"
t1=$(date +%s)
unshare -n chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh /opt/offline-kit/cai-dat.sh |
  tee "$scratch/install1.log"
grep -q "Đã cài xong Bình Yên $version" "$scratch/install1.log" || fail "the kit did not install $version"
t2=$(date +%s)
unshare -n chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh /opt/offline-kit/cai-dat.sh |
  tee "$scratch/install2.log"
grep -q "    0 gói mới được cài" "$scratch/install2.log" || fail "a second run installed packages again"
# A damaged kit is refused before anything is installed.
cp -r "$root/opt/offline-kit" "$root/opt/damaged-kit"
echo x >>"$root/opt/damaged-kit/HUONG-DAN.pdf"
if unshare -n chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh /opt/damaged-kit/cai-dat.sh >"$scratch/damaged.log" 2>&1; then
  fail "a damaged kit was installed"
fi
grep -q "tệp bị hỏng hoặc bị sửa" "$scratch/damaged.log" || fail "a damaged kit was not named as such"

step "Station: the command line in the installed system"
got=$(unshare -n chroot "$root" binhyen --version)
[ "$got" = "binhyen $version" ] || fail "binhyen --version said '$got', not 'binhyen $version'"
in_root sh -c 'BINHYEN_USER=truong BINHYEN_PASSWORD="mật khẩu thử gói cài" binhyen --data-dir /root/thu init --unit 24280 --demo' >/dev/null
in_root sh -c 'BINHYEN_USER=truong BINHYEN_PASSWORD="mật khẩu thử gói cài" binhyen --data-dir /root/thu doctor' |
  tee "$scratch/doctor.log"
locale_ok=$(in_root locale -a | grep -ci '^vi_VN\.utf-\?8$' || true)
[ "$locale_ok" -ge 1 ] || fail "the package did not set up the vi_VN.UTF-8 locale"
grep -q "Name=Bình Yên" "$root/usr/share/applications/"*.desktop || fail "no menu entry named Bình Yên"

step "Station: the desktop app under Xvfb, nothing set for it"
display=":$((150 + RANDOM % 50))"
Xvfb "$display" -screen 0 1366x768x24 -nolisten tcp &
xvfb=$!
sleep 1
mkdir -p "$root/tmp/.X11-unix"
mount --bind /tmp/.X11-unix "$root/tmp/.X11-unix"
chroot "$root" env -i HOME=/root PATH=/usr/bin:/bin DISPLAY="$display" LANG=C.UTF-8 \
  binhyen-desktop >"$scratch/desktop.log" 2>&1 &
app=$!
drawn=""
for _ in $(seq 1 60); do
  sleep 1
  if DISPLAY="$display" xwininfo -root -tree 2>/dev/null | grep -q '"Bình Yên"'; then
    sleep 3
    DISPLAY="$display" /usr/bin/import -window root "$shots/first-screen.png"
    colours=$(/usr/bin/convert "$shots/first-screen.png" -format %k info:)
    # A blank (white or black) window has a handful of colours; drawn text has hundreds.
    if [ "$colours" -gt 200 ]; then
      drawn=$colours
      break
    fi
  fi
done
kill "$app" 2>/dev/null || true
wait "$app" 2>/dev/null || true
[ -n "$drawn" ] || { cat "$scratch/desktop.log" >&2; fail "the desktop app's first screen was not drawn"; }
echo "first screen drawn ($drawn colours): $shots/first-screen.png"
[ ! -e "$root/root/.local/share/binhyen/station.db" ] || fail "the app made a station before the set-up screen's choice"

step "Server: the package, its unit, a start as the unit does it, SIGTERM"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root apt-get update -qq
in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /opt/binhyen-server_${version}_amd64.deb" >/dev/null
systemd-analyze verify --root="$root" /lib/systemd/system/binhyen-server.service ||
  fail "systemd-analyze verify refused the unit"
[ "$(in_root stat -c %U:%a /var/lib/binhyen-server)" = "binhyen-server:700" ] ||
  fail "the data directory is not the server user's alone"
# As the unit runs it: its user, its settings (EnvironmentFile), its ExecStart.
port=$((20000 + RANDOM % 20000))
sed -i "s/^BINHYEN_LISTEN=.*/BINHYEN_LISTEN=127.0.0.1:$port/" "$root/etc/binhyen-server/server.env"
as_unit() {
  chroot --userspec=binhyen-server:binhyen-server "$root" env -i PATH=/usr/bin:/bin \
    sh -c "set -a; . /etc/binhyen-server/server.env; set +a; cd /var/lib/binhyen-server; exec $*"
}
as_unit binhyen-server units import /usr/share/binhyen-server/admin-units-2025.csv >/dev/null
# chroot, env and sh each exec the next: $! is the server itself, as systemd would signal it.
chroot --userspec=binhyen-server:binhyen-server "$root" env -i PATH=/usr/bin:/bin \
  sh -c 'set -a; . /etc/binhyen-server/server.env; set +a; cd /var/lib/binhyen-server; exec binhyen-server serve --listen "$BINHYEN_LISTEN"' \
  >"$scratch/server.log" 2>&1 &
server=$!
healthy=""
for _ in $(seq 1 100); do
  if curl -skf "https://127.0.0.1:$port/healthz" >/dev/null; then
    healthy=1
    break
  fi
  sleep 0.2
done
[ -n "$healthy" ] || { cat "$scratch/server.log" >&2; fail "no answer on /healthz"; }
[ "$(stat -c %a "$root/var/lib/binhyen-server/server.key")" = 600 ] || fail "the server's key file is not 0600"

step "Server: the nightly backup, as its timer runs it"
for unit in binhyen-server-backup.service binhyen-server-backup.timer; do
  systemd-analyze verify --root="$root" "/lib/systemd/system/$unit" ||
    fail "systemd-analyze verify refused $unit"
done
as_backup() {
  chroot --userspec=binhyen-server:binhyen-server "$root" env -i PATH=/usr/bin:/bin \
    sh -c "set -a; . /etc/binhyen-server/server.env; . /etc/binhyen-server/backup.env; set +a; cd /var/lib/binhyen-server; exec $*"
}
# No passphrase set: refused, and said so.
if as_backup /usr/lib/binhyen-server/backup.sh >"$scratch/backup.log" 2>&1; then
  fail "a backup was made with no passphrase"
fi
grep -q "BINHYEN_BACKUP_PASSPHRASE is not set" "$scratch/backup.log" || fail "no clear message without a passphrase"
sed -i "s/^BINHYEN_BACKUP_PASSPHRASE=.*/BINHYEN_BACKUP_PASSPHRASE='mật khẩu sao lưu thử gói cài'/" "$root/etc/binhyen-server/backup.env"
# A week and more of earlier backups: the oldest go.
bdir="$root/var/lib/binhyen-server/backups"
install -d -m 0700 -o "$(stat -c %u "$root/var/lib/binhyen-server")" "$bdir"
for d in 1 2 3 4 5 6 7 8 9; do
  touch -d "$d days ago" "$bdir/daily-old$d.bak"
done
for w in 1 2 3 4 5 6; do
  touch -d "$((w * 7)) days ago" "$bdir/weekly-old$w.bak"
done
as_backup /usr/lib/binhyen-server/backup.sh >"$scratch/backup.log" 2>&1 ||
  { cat "$scratch/backup.log" >&2; fail "the scheduled backup failed"; }
grep -q "daily backup written to /var/lib/binhyen-server/backups/daily-" "$scratch/backup.log" ||
  fail "the backup did not say where it went"
[ "$(ls "$bdir"/daily-*.bak | wc -l)" = 7 ] || fail "not a week of daily backups kept"
[ "$(ls "$bdir"/weekly-*.bak | wc -l)" -le 5 ] || fail "more than a month of weekly backups kept"
newest=$(ls -1t "$bdir"/daily-*.bak | head -n 1)
[ "$(stat -c %a "$newest")" = 600 ] || fail "a backup is readable by others"
as_backup binhyen-server verify-backup "/var/lib/binhyen-server/backups/$(basename "$newest")" >/dev/null ||
  fail "the scheduled backup does not verify"

step "The installed station enrols with the installed server and syncs"
# Sealed under a code, as the province issues it; the code comes by another way (the phone).
code=$(as_unit binhyen-server station enroll --unit 24280 --url "https://127.0.0.1:$port" --out /var/lib/binhyen-server/cap-phep.json |
  sed -n 's/.*by phone, never with the file): //p')
[ -n "$code" ] || fail "station enroll printed no code"
cp "$root/var/lib/binhyen-server/cap-phep.json" "$root/root/cap-phep.json"
t5=$(date +%s)
in_root sh -c "BINHYEN_PROVISIONING_CODE='$code' BINHYEN_USER=truong BINHYEN_PASSWORD='mật khẩu thử gói cài' binhyen --data-dir /root/tram enroll /root/cap-phep.json" >/dev/null
in_root sh -c 'BINHYEN_USER=truong BINHYEN_PASSWORD="mật khẩu thử gói cài" binhyen --data-dir /root/tram --json sync' >"$scratch/sync.json"
grep -q '"checksum_ok": *true' "$scratch/sync.json" || { cat "$scratch/sync.json" >&2; fail "the first sync did not agree with the server"; }
t6=$(date +%s)

step "Station: update $version -> $next, published at the province, fetched at sync"
for f in "dist-next/binhyen_${next}_amd64.deb" "packaging/release/dev-release.key"; do
  [ -f "$f" ] || fail "missing $f"
done
release="$scratch/binhyen_${next}_amd64.deb"
cp "dist-next/binhyen_${next}_amd64.deb" "$release"
scripts/sign-release.sh --key packaging/release/dev-release.key "$release" >/dev/null
install -m 0644 "$release" "$release.minisig" "$root/var/lib/binhyen-server/"
as_unit binhyen-server release publish "/var/lib/binhyen-server/binhyen_${next}_amd64.deb" --units 24280
creds='BINHYEN_USER=truong BINHYEN_PASSWORD="mật khẩu thử gói cài"'
in_root sh -c "$creds binhyen --data-dir /root/tram --json sync" >/dev/null
in_root sh -c "$creds binhyen --data-dir /root/tram --json update status" >"$scratch/update.json"
grep -q '"ready": *true' "$scratch/update.json" || { cat "$scratch/update.json" >&2; fail "the update was not downloaded and checked"; }
t7=$(date +%s)
unshare -n chroot "$root" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  sh -c "$creds binhyen --data-dir /root/tram --json update apply" >"$scratch/apply.json" ||
  { cat "$scratch/apply.json" >&2; fail "the update did not install"; }
grep -q "\"installed\": *\"$next\"" "$scratch/apply.json" || fail "the update says it installed something else"
grep -q '"doctor_ok": *true' "$scratch/apply.json" || { cat "$scratch/apply.json" >&2; fail "the new version did not check the station"; }
got=$(unshare -n chroot "$root" binhyen --version)
[ "$got" = "binhyen $next" ] || fail "after the update binhyen --version said '$got'"
ls "$root"/root/tram/backups/truoc-cap-nhat-"$next"-*.bybk >/dev/null || fail "no backup before the update"
t8=$(date +%s)
# A release whose installation fails (its pre-installation script refuses) leaves the
# version that was there working, and says so.
broken="$scratch/broken"
dpkg-deb -R "$release" "$broken"
bad="${next%.*}.$((${next##*.} + 1))"
sed -i "s/^Version: .*/Version: $bad/" "$broken/DEBIAN/control"
printf '#!/bin/sh\necho "this release refuses to install" >&2\nexit 1\n' >"$broken/DEBIAN/preinst"
chmod 0755 "$broken/DEBIAN/preinst"
dpkg-deb --root-owner-group -Zxz --build "$broken" "$root/root/binhyen_${bad}_amd64.deb" >/dev/null
scripts/sign-release.sh --key packaging/release/dev-release.key "$root/root/binhyen_${bad}_amd64.deb" >/dev/null
if unshare -n chroot "$root" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  sh -c "$creds binhyen --data-dir /root/tram update apply /root/binhyen_${bad}_amd64.deb" >"$scratch/broken.log" 2>&1; then
  fail "a release that fails to install was reported installed"
fi
grep -q "Bản $next vẫn dùng được" "$scratch/broken.log" || { cat "$scratch/broken.log" >&2; fail "the failed update did not say the old version still works"; }
got=$(unshare -n chroot "$root" binhyen --version)
[ "$got" = "binhyen $next" ] || fail "after a failed update binhyen --version said '$got'"
in_root sh -c "$creds binhyen --data-dir /root/tram doctor" >/dev/null || fail "the station does not open after a failed update"

kill -TERM "$server"
code=0
wait "$server" || code=$?
[ "$code" = 0 ] || { cat "$scratch/server.log" >&2; fail "binhyen-server exited $code on SIGTERM"; }
grep -q "stopped" "$scratch/server.log" || fail "the server did not say it stopped"
in_root dpkg -P binhyen-server >/dev/null

step "Station: remove keeps the data, purge says where it is"
in_root dpkg -r binhyen >/dev/null
[ -f "$root/root/thu/station.db" ] && [ -f "$root/root/tram/station.db" ] || fail "removing the package removed the data"
[ ! -e "$root/usr/bin/binhyen" ] || fail "removing the package left /usr/bin/binhyen"
in_root dpkg -P binhyen | tee "$scratch/purge.log"
grep -q "KHÔNG bị xoá" "$scratch/purge.log" || fail "purging did not say where the data is"
[ -f "$root/root/thu/station.db" ] && [ -f "$root/root/tram/station.db" ] || fail "purging removed the data"


step "Figures"
echo "packages:"
ls -l dist/*.deb dist/*.rpm | awk '{printf "  %-45s %6.1f MB\n", $9, $5 / 1048576}'
echo "  offline kit: $(du -sb dist/offline-kit | awk '{printf "%.1f MB", $1 / 1048576}'), $(ls dist/offline-kit/debs | wc -l) dependency packages"
echo "times: fresh root $((t1 - t0)) s; kit install (no network) $((t2 - t1)) s; enrol and first sync $((t6 - t5)) s;"
echo "  update published, fetched at sync and checked $((t7 - t6)) s, installed with doctor $((t8 - t7)) s;"
echo "  blank Debian 12 root to an enrolled station that has synced once: $((t2 - t1 + t6 - t5)) s; the whole test $(($(date +%s) - started)) s"
echo "test-package: all passed ($version)"
