#!/bin/sh
# The province's records are never deleted by the package: on purge, say where they are.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "${1:-}" = purge ]; then
  echo "binhyen-server đã được gỡ. Dữ liệu KHÔNG bị xoá: /var/lib/binhyen-server (và cơ sở"
  echo "dữ liệu PostgreSQL nếu dùng). Hãy sao lưu trước khi xoá bằng tay."
fi
exit 0
