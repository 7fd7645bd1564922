#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "${1:-}" = remove ]; then
  systemctl stop binhyen-server-backup.timer binhyen-server.service >/dev/null 2>&1 || true
fi
exit 0
