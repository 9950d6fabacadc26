#!/usr/bin/env bash
# `port25 trace` over a large index (issue 19): fills the abuse desk's
# index with N synthetic messages (trace_load, crates/abuse/examples: one
# session, one message, two recipients each, over 30 days, clients in
# 100.64.0.0/10 so that many sessions share an address and the port tells
# them apart), then times the whole `port25 trace` command (process start,
# open, lookup, print) by Message-ID, by queue id, and by client
# address:port with a one-hour window, LOOKUPS times each on keys spread
# over the index; prints the medians and the index size. Goal: < 100 ms at
# N = 10 M.
#
# Usage: bench/trace.sh
# Env:   N=10000000 LOOKUPS=21 PORT25_BIN=target/release/port25
#        LOADER=target/release/examples/trace_load (both built if missing)
#        KEEP=1 (keep the index in WORK) WORK=/var/tmp/port25-trace.XXXX
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
N=${N:-10000000}
LOOKUPS=${LOOKUPS:-21}
PORT25_BIN=${PORT25_BIN:-$ROOT/target/release/port25}
LOADER=${LOADER:-$ROOT/target/release/examples/trace_load}
if [ ! -x "$PORT25_BIN" ] || [ ! -x "$LOADER" ]; then
  (cd "$ROOT" && cargo build --release -p port25 -p port25-abuse --example trace_load)
fi
WORK=${WORK:-$(mktemp -d /var/tmp/port25-trace.XXXX)}
cleanup() { [ "${KEEP:-}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/data/abuse"
printf 'hostname = "bench.example"\ndata_dir = "%s/data"\n' "$WORK" >"$WORK/port25.toml"
DB="$WORK/data/abuse/abuse.sqlite"
if [ ! -s "$WORK/keys" ]; then
  start=$(date +%s)
  "$LOADER" "$DB" "$N" 30 >"$WORK/keys" 2>"$WORK/load.log" || die "trace_load failed: $(tail -3 "$WORK/load.log")"
  echo "loaded $N messages in $(( $(date +%s) - start )) s; index $(du -sh "$WORK/data/abuse" | cut -f1)"
fi

ms_of() { # command...: wall milliseconds; fails when the trace finds nothing
  local a b
  a=$(date +%s%N)
  "$@" >/dev/null || die "nothing found: $*"
  b=$(date +%s%N)
  echo $(((b - a) / 1000000))
}
run() { # label kind
  local times=() keys key i=0
  mapfile -t keys < <(grep "^$2 " "$WORK/keys" | cut -d' ' -f2-)
  [ ${#keys[@]} -gt 0 ] || die "no $2 keys"
  while [ $i -lt "$LOOKUPS" ]; do
    key=${keys[$((i % ${#keys[@]}))]}
    case $2 in
      mid) times+=("$(ms_of "$PORT25_BIN" trace -c "$WORK/port25.toml" --message-id "$key")") ;;
      qid) times+=("$(ms_of "$PORT25_BIN" trace -c "$WORK/port25.toml" --queue-id "$key")") ;;
      client)
        read -r cip cms <<<"$key"
        from=$((cms / 1000 - 1800))
        times+=("$(ms_of "$PORT25_BIN" trace -c "$WORK/port25.toml" --client "$cip" --from "$from" --to "$((from + 3600))")")
        ;;
    esac
    i=$((i + 1))
  done
  printf '%-28s median %4s ms  (min %s, max %s over %s lookups)\n' "$1" "$(median "${times[@]}")" \
    "$(printf '%s\n' "${times[@]}" | sort -g | head -1)" "$(printf '%s\n' "${times[@]}" | sort -g | tail -1)" "$LOOKUPS"
}
echo "port25 trace over $N messages ($(du -sh "$WORK/data/abuse" | cut -f1) index):"
run "by Message-ID" mid
run "by queue id" qid
run "by client address:port, 1 h" client
