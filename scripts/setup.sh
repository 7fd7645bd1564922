#!/usr/bin/env bash
# Installs what Bình Yên needs on a Debian or Ubuntu machine, skipping what is already
# there: WebKitGTK and its WebDriver, Xvfb, OpenSSL headers (SQLCipher), Node.js, the UI's
# npm packages and tauri-driver. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

packages=(build-essential pkg-config curl file libssl-dev libwebkit2gtk-4.1-dev libxdo-dev librsvg2-dev
  libayatana-appindicator3-dev webkit2gtk-driver xvfb xauth locales minisign
  dbus-daemon dbus-bin python3-venv)
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The app's date fields read in Vietnamese order where vi_VN.UTF-8 exists (the .deb's
# post-install makes it; here the same script does, for the app run from source and its tests).
if ! locale -a 2>/dev/null | grep -qi '^vi_VN\.utf-\?8$'; then
  step "locale vi_VN.UTF-8"
  $SUDO sh scripts/deb-postinst.sh
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust is missing: install it with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old for the UI build (Vite needs 20.19 or newer)." >&2
  exit 1
fi

if ! command -v tauri-driver >/dev/null 2>&1; then
  step "cargo install tauri-driver"
  cargo install tauri-driver --locked --version 2.1.0
fi

if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  step "npm ci (ui)"
  (cd ui && npm ci --no-audit --no-fund)
fi

# PostgreSQL for the server's conformance tests: use the one listening on 127.0.0.1:5432,
# or install and start one. Where it does not trust local connections, give the postgres
# role a test password and say so in $HOME/.cache/binhyen/pg.env (read by scripts/test.sh).
pg_env="$HOME/.cache/binhyen/pg.env"
mkdir -p "$(dirname "$pg_env")"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    step "apt-get install postgresql"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql postgresql-client
  fi
  version=$(ls /etc/postgresql | sort -n | tail -1)
  step "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql "postgres://postgres@127.0.0.1:5432/test" -qAtc 'select 1' >/dev/null 2>&1; then
  step "preparing the PostgreSQL test database"
  $SUDO -u postgres psql -qc "ALTER ROLE postgres PASSWORD 'binhyen-test'" 2>/dev/null \
    || su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'binhyen-test'\""
  $SUDO -u postgres createdb test 2>/dev/null || su postgres -c "createdb test" 2>/dev/null || true
  echo "export BINHYEN_TEST_PG=postgres://postgres:binhyen-test@127.0.0.1:5432/test" > "$pg_env"
else
  rm -f "$pg_env"
fi
