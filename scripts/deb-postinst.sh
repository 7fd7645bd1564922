#!/bin/sh
# Bình Yên's .deb post-install: make sure the vi_VN.UTF-8 locale exists, so that the app's
# date and time fields read in Vietnamese order (21:37 28/11/2026) on a laptop whose system
# language is English. Never fails the installation.
set -u
if ! locale -a 2>/dev/null | grep -qi '^vi_VN\.utf-\?8$'; then
  if [ -f /etc/locale.gen ]; then
    grep -q '^vi_VN.UTF-8 UTF-8' /etc/locale.gen || echo 'vi_VN.UTF-8 UTF-8' >> /etc/locale.gen
  fi
  if command -v locale-gen >/dev/null 2>&1; then
    locale-gen vi_VN.UTF-8 >/dev/null 2>&1 || locale-gen >/dev/null 2>&1 || true
  fi
fi
exit 0
