#!/usr/bin/env bash
# What the abuse desk's index costs a submission server per message, in
# instructions (issue 19): deterministic where the wall-clock benches on a
# shared machine are not. Each binary runs as bench/submission-vs-postfix.sh
# runs port25 (the same config: STARTTLS submission, one login, Maildir
# delivery, on_volume = "tag"), under `valgrind --tool=callgrind`, with the
# index on and off. smtp-load sends one session (the password checked and
# cached), then a fixed number of sessions of MSGS messages; the server is stopped once every message is delivered, and
# callgrind's total is read. Two runs per case (SMALL and LARGE sessions):
# their difference over the difference in messages is the cost of one more
# message, with start-up, the login's password check and shutdown taken out.
#
# Usage: bench/index-callgrind.sh NAME=BINARY...   (e.g. main=/tmp/p25-main new=target/release/port25)
# Env:   MSGS=10 SMALL=8 LARGE=40 PROCS=4 PORT=4760 LOADGEN=target/release/smtp-load
#        MODES="on off" WORK_PARENT=/var/tmp KEEP=0
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MSGS=${MSGS:-10}
SMALL=${SMALL:-8}
LARGE=${LARGE:-40}
PROCS=${PROCS:-4}
PORT=${PORT:-4760}
LOADGEN=${LOADGEN:-$ROOT/target/release/smtp-load}
MODES=${MODES:-on off}
KEEP=${KEEP:-0}
DOMAIN=bench.example
LOGIN=bench@$DOMAIN
PASSWORD='bench password'

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
[ $# -gt 0 ] || die "usage: $0 NAME=BINARY..."
command -v valgrind >/dev/null || die "valgrind is not installed"
[ -x "$LOADGEN" ] || die "no load generator at $LOADGEN (cargo build --release -p port25-loadgen)"

WORK=$(mktemp -d "${WORK_PARENT:-/var/tmp}/port25-indexcg.XXXXXX")
SERVER=
cleanup() {
  set +e
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Instructions the server executed from start to exit, with SESSIONS sessions.
instructions() { # binary abuse sessions -> prints the total
  local bin=$1 abuse=$2 sessions=$3 dir out maildir got i
  dir=$WORK/run.$RANDOM
  mkdir -p "$dir"
  submission_bench_config "$dir" "$PORT" starttls "$abuse" "$DOMAIN" >"$dir/port25.toml"
  echo "$PASSWORD" | "$bin" users add "$LOGIN" --config "$dir/port25.toml" >/dev/null
  valgrind --tool=callgrind --collect-atstart=yes --callgrind-out-file="$dir/callgrind.out" \
    "$bin" serve --config "$dir/port25.toml" 2>"$dir/valgrind.log" &
  SERVER=$!
  wait_port "$PORT" 120 tcp || die "$bin did not listen on $PORT under valgrind (see $dir/valgrind.log)"
  # One session alone first: the password's argon2 runs once, and its
  # result is cached before the clients start together (else as many of
  # them as arrive before it is cached each run argon2, ~100 M
  # instructions, a number that varies with timing).
  "$LOADGEN" --server "127.0.0.1:$PORT" --tls starttls --login "$LOGIN" --password "$PASSWORD" \
    --concurrency 1 --sessions 1 --messages 1 >/dev/null
  out=$("$LOADGEN" --server "127.0.0.1:$PORT" --tls starttls --login "$LOGIN" --password "$PASSWORD" \
    --concurrency "$PROCS" --sessions "$sessions" --messages "$MSGS")
  [ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["messages"])' "$out")" = $((sessions * MSGS)) ] ||
    die "not every message was accepted: $out"
  maildir=$dir/data/mail/$DOMAIN/bench/new
  for ((i = 0; i < 1200; i++)); do
    got=$(find "$maildir" -maxdepth 1 -type f 2>/dev/null | wc -l)
    [ "$got" -ge $((sessions * MSGS + 1)) ] && break
    sleep 0.1
  done
  [ "$got" = $((sessions * MSGS + 1)) ] || die "$got of $((sessions * MSGS + 1)) messages delivered"
  kill -TERM "$SERVER"
  wait "$SERVER" || true
  SERVER=
  awk '/^totals:/ { print $2 }' "$dir/callgrind.out"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
}

echo "index cost in instructions: MSGS=$MSGS, $SMALL and $LARGE sessions, $PROCS clients; $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A PER
for spec in "$@"; do
  name=${spec%%=*}
  bin=${spec#*=}
  [ -x "$bin" ] || die "no binary at $bin"
  for abuse in $MODES; do
    small=$(instructions "$bin" "$abuse" "$SMALL")
    large=$(instructions "$bin" "$abuse" "$LARGE")
    PER[$name,$abuse]=$(awk -v a="$small" -v b="$large" -v n=$(((LARGE - SMALL) * MSGS)) 'BEGIN { printf "%.0f", (b - a) / n }')
    printf '%-8s index %-3s  %s sessions: %s Ir  %s sessions: %s Ir  per message: %s Ir\n' \
      "$name" "$abuse" "$SMALL" "$small" "$LARGE" "$large" "${PER[$name,$abuse]}"
  done
  if [ -n "${PER[$name,on]:-}" ] && [ -n "${PER[$name,off]:-}" ]; then
    printf '%-8s on/off per message: %s\n' "$name" "$(awk -v a="${PER[$name,on]}" -v b="${PER[$name,off]}" 'BEGIN { printf "%.4f", a / b }')"
  fi
done
echo "done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
