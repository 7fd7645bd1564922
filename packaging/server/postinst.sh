#!/bin/sh
# binhyen-server's post-install: its own system user and data directory.
set -e
if [ "${1:-}" = configure ]; then
  if ! getent passwd binhyen-server >/dev/null; then
    adduser --system --group --home /var/lib/binhyen-server --no-create-home \
      --gecos "Binh Yen server" binhyen-server >/dev/null
  fi
  install -d -m 0700 -o binhyen-server -g binhyen-server /var/lib/binhyen-server
  chown root:binhyen-server /etc/binhyen-server/server.env /etc/binhyen-server/backup.env
  chmod 0640 /etc/binhyen-server/server.env /etc/binhyen-server/backup.env
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    systemctl enable binhyen-server.service >/dev/null 2>&1 || true
    systemctl enable binhyen-server-backup.timer >/dev/null 2>&1 || true
  fi
  echo "binhyen-server: dữ liệu ở /var/lib/binhyen-server, cài đặt ở /etc/binhyen-server/server.env."
  echo "Trước khi chạy: sudo -u binhyen-server binhyen-server units import <danh-muc.csv>"
  echo "rồi: sudo systemctl start binhyen-server"
  echo "Sao lưu hằng đêm: đặt BINHYEN_BACKUP_PASSPHRASE trong /etc/binhyen-server/backup.env, rồi: sudo systemctl start binhyen-server-backup.timer"
fi
exit 0
