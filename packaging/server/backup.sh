#!/bin/sh
# The Bình Yên server's scheduled backup (binhyen-server-backup.timer, daily): a backup made
# while the server serves, sealed under BINHYEN_BACKUP_PASSPHRASE (/etc/binhyen-server/
# backup.env). Keeps a week of daily backups and a month of weekly ones (Sunday's), and says
# in the journal where each went. Copy them off the machine as well: a backup on the
# server's own disk does not survive the disk.
set -eu
dir="${BINHYEN_BACKUP_DIR:-/var/lib/binhyen-server/backups}"
if [ -z "${BINHYEN_BACKUP_PASSPHRASE:-}" ]; then
  echo "binhyen-server-backup: BINHYEN_BACKUP_PASSPHRASE is not set in /etc/binhyen-server/backup.env: no backup was made" >&2
  exit 1
fi
umask 077
mkdir -p "$dir"
day=$(date +%Y%m%d)
file="$dir/daily-$day.bak"
binhyen-server backup --out "$file" >/dev/null
echo "binhyen-server-backup: daily backup written to $file ($(du -h "$file" | cut -f1))"
if [ "$(date +%u)" = 7 ]; then
  cp -p "$file" "$dir/weekly-$day.bak"
  echo "binhyen-server-backup: weekly backup written to $dir/weekly-$day.bak"
fi
# Newest first; what is past a week of daily ones and a month of weekly ones goes.
ls -1t "$dir"/daily-*.bak 2>/dev/null | tail -n +8 | while read -r old; do
  rm -f -- "$old" && echo "binhyen-server-backup: removed $old (older than a week)"
done
ls -1t "$dir"/weekly-*.bak 2>/dev/null | tail -n +6 | while read -r old; do
  rm -f -- "$old" && echo "binhyen-server-backup: removed $old (older than a month)"
done
