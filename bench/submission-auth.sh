#!/usr/bin/env bash
# AUTH sessions per second on port25's submission listener, with the
# verified-password cache on and off (issue 8).
#
# Starts a throwaway port25 (own TOML and data_dir under a temp directory,
# submission with implicit TLS on 127.0.0.1:$PORT, Maildir delivery, log
# level warn), adds one argon2id user, then runs smtp-load (bench/loadgen):
# PROCS concurrent clients doing, back to back for SECONDS, implicit TLS +
# EHLO + AUTH PLAIN + MSGS messages of SIZE bytes + QUIT. Once with
# password_cache_secs = 3600 and once with 0 (every login pays argon2id).
# The brute-force limits are not involved: every login succeeds.
#
# Usage: bench/submission-auth.sh
# Env:   PROCS=4 SECONDS_EACH=10 MSGS=1 SIZE=2048 PORT=4651 MODE=implicit|starttls
#        PORT25_BIN=target/release/port25 LOADGEN=target/release/smtp-load (built if missing); KEEP=1 keeps the temp dir
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROCS=${PROCS:-4}
SECONDS_EACH=${SECONDS_EACH:-10}
MSGS=${MSGS:-1}
SIZE=${SIZE:-2048}
PORT=${PORT:-4651}
MODE=${MODE:-implicit}
PORT25_BIN=${PORT25_BIN:-$ROOT/target/release/port25}
LOADGEN=${LOADGEN:-$ROOT/target/release/smtp-load}
KEEP=${KEEP:-0}
USER_LOGIN=bench@bench.example
PASSWORD='bench password'

if [ ! -x "$PORT25_BIN" ] || [ ! -x "$LOADGEN" ]; then
  (cd "$ROOT" && cargo build --release -p port25 -p port25-loadgen)
fi
TMP=$(mktemp -d /var/tmp/port25-auth-bench.XXXXXX)
cleanup() {
  [ -n "${P25_PID:-}" ] && kill "$P25_PID" 2>/dev/null && wait "$P25_PID" 2>/dev/null || true
  [ "$KEEP" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT

run() {
  local cache=$1
  local tls=implicit
  [ "$MODE" = starttls ] && tls=starttls
  cat > "$TMP/port25.toml" <<TOML
hostname = "bench.example"
data_dir = "$TMP/data"
[log]
level = "warn"
# No HTTP listener: a port25 serve already running on :8025 would stop this one.
[http]
enabled = false
[mx]
domains = ["bench.example"]
[submission]
password_cache_secs = $cache
messages_per_hour = 0
messages_per_day = 0
recipients_per_hour = 0
recipients_per_day = 0
# PROCS sessions of one login from one address, whatever PROCS is.
max_sessions_per_login = 100000
auth_in_flight_per_address = 100000
[[listener]]
name = "submissions"
address = "127.0.0.1:$PORT"
service = "submission"
tls = "$tls"
TOML
  if [ ! -f "$TMP/data/accounts.db" ]; then
    echo "$PASSWORD" | "$PORT25_BIN" users add "$USER_LOGIN" --config "$TMP/port25.toml" >/dev/null
  fi
  "$PORT25_BIN" serve --config "$TMP/port25.toml" 2>"$TMP/port25-$cache.log" &
  P25_PID=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
  done
  local result
  result=$("$LOADGEN" --server "127.0.0.1:$PORT" --tls "$MODE" --login "$USER_LOGIN" --password "$PASSWORD" \
    --concurrency "$PROCS" --seconds "$SECONDS_EACH" --messages "$MSGS" --size "$SIZE")
  kill "$P25_PID"; wait "$P25_PID" 2>/dev/null || true
  P25_PID=
  echo "password_cache_secs=$cache  $result"
}

echo "port25 submission AUTH benchmark: $MODE TLS, $PROCS clients, ${SECONDS_EACH}s each, $MSGS message(s) of $SIZE bytes per session"
echo "machine: $(nproc) CPUs, $(uname -r)"
run 3600
run 0
