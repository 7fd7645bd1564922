#!/bin/sh
# Bình Yên's removal: the officers' data is never touched. On purge, say where it is.
set -u
case "${1:-}" in
  purge | 0)
    echo "Bình Yên đã được gỡ. Dữ liệu của trạm KHÔNG bị xoá: nó nằm (đã mã hoá) trong"
    echo "~/.local/share/binhyen của từng người dùng máy này (hoặc thư mục BINHYEN_DATA_DIR)."
    echo "Hãy sao lưu trước khi xoá thư mục đó bằng tay."
    ;;
esac
exit 0
