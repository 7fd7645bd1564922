#!/usr/bin/env bash
# The API against its own description (issue 25): schemathesis (from PyPI) generates
# requests from /api/openapi.json and sends them to the real server, on SQLite and on
# PostgreSQL, with an enrolled station's credentials. It fails on any 5xx, on an answer
# whose status, content type, headers or body the document does not describe, and on an
# operation that answers without the credentials it requires. Run by hand (it prints what
# it tried); EXAMPLES (default 100) sets how many requests per operation and phase.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

venv="$HOME/.cache/binhyen/schemathesis"
if [ ! -x "$venv/bin/st" ]; then
  step "schemathesis (PyPI) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis==4.32.5'
fi
cargo build -q -p binhyen-server
server="$CARGO_TARGET_DIR/debug/binhyen-server"
pg_admin="${BINHYEN_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
work=$(mktemp -d)
pid=""
pg_db="binhyen_schemathesis_$$"
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One backend: a fresh server, a station enrolled over the API, schemathesis against it.
against() {
  local name=$1 db=$2
  step "schemathesis against the server on $name"
  export BINHYEN_SERVER_KEY_FILE="$work/$name.key"
  "$server" units import crates/store/data/admin-units-2025.csv --db "$db" >/dev/null
  local port
  port=$(free_port)
  "$server" serve --db "$db" --listen "127.0.0.1:$port" --insecure-http 2>"$work/$name.log" >/dev/null &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
  "$server" station enroll --db "$db" --unit 24280 --url "http://127.0.0.1:$port" --unsealed \
    --out "$work/$name.json" >/dev/null
  local token bearer
  token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/$name.json")
  bearer=$(curl -sf -X POST -H 'Content-Type: application/json' -d "{\"token\": \"$token\"}" \
    "http://127.0.0.1:$port/api/v1/enroll" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["station_id"] + "." + r["secret"])')
  "$venv/bin/st" run "http://127.0.0.1:$port/api/openapi.json" \
    --header "Authorization: Bearer $bearer" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth \
    --max-examples "${EXAMPLES:-100}" \
    --seed "${SEED:-1}" \
    --request-timeout 30 \
    --suppress-health-check all \
    --warnings off
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
}

against sqlite "sqlite:$work/server.db"
psql -q "$pg_admin" -c "CREATE DATABASE $pg_db" >/dev/null
against postgres "${pg_admin%/*}/$pg_db"
step "schemathesis: no 5xx and every answer as described, on both backends"
