#!/usr/bin/env bash
# Checks smtp-load (bench/loadgen) against Postfix's smtp-source on the
# plain MX path (no TLS, no AUTH), so that its submission figures can be
# trusted: one port25 MX, the same sessions (one message of SIZE bytes
# each, PROCS in parallel, MSGS sessions) from smtp-source and from
# smtp-load --tls none, ROUNDS rounds alternating which goes first; per
# run messages/s and the generator's own CPU time. If smtp-load were much
# slower than smtp-source, or used much more CPU per message, it would be
# the bottleneck and its figures a floor, not a measure of the server.
#
# Usage: bench/loadgen-check.sh     (needs smtp-source: apt-get install postfix)
# Env:   PROCS=4 MSGS=5000 SIZE=2048 ROUNDS=3 PORT=2528
#        PORT25_BIN=target/release/port25 LOADGEN=target/release/smtp-load
#        (both built if missing); KEEP=1
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROCS=${PROCS:-4}
MSGS=${MSGS:-5000}
SIZE=${SIZE:-2048}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-2528}
PORT25_BIN=${PORT25_BIN:-$ROOT/target/release/port25}
LOADGEN=${LOADGEN:-$ROOT/target/release/smtp-load}
KEEP=${KEEP:-0}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
command -v smtp-source >/dev/null || die "smtp-source missing (apt-get install postfix)"
{ [ -x "$PORT25_BIN" ] && [ -x "$LOADGEN" ]; } || (cd "$ROOT" && cargo build --release -p port25 -p port25-loadgen)

WORK=$(mktemp -d /var/tmp/port25-loadgen.XXXXXX)
P25_PID=
cleanup() {
  set +e
  [ -n "$P25_PID" ] && kill "$P25_PID" 2>/dev/null && wait "$P25_PID" 2>/dev/null
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

cat >"$WORK/port25.toml" <<TOML
hostname = "bench-port25.localdomain"
data_dir = "$WORK/data"
[log]
level = "warn"
# No HTTP listener: a port25 serve already running on :8025 would stop this one.
[http]
enabled = false
[mx]
domains = ["bench.example"]
# The MX accepts only mailboxes that exist: both clients' one recipient.
recipients = ["rcpt@bench.example"]
[[listener]]
name = "mx"
address = "127.0.0.1:$PORT"
tls = "none"
TOML
"$PORT25_BIN" serve --config "$WORK/port25.toml" 2>"$WORK/port25.log" &
P25_PID=$!
wait_port "$PORT" 10 || die "port25 is not answering on $PORT (see $WORK/port25.log)"

# Runs a command; prints "wall_seconds cpu_seconds" of it (children's rusage).
timed() {
  python3 -c '
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.3f %.3f" % (time.monotonic() - t, r.ru_utime + r.ru_stime))' "$@"
}

echo "load generator check on the plain MX path: $PROCS parallel sessions, $MSGS sessions of one ${SIZE}-byte message, $ROUNDS rounds"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RATE CPU
for round in $(seq "$ROUNDS"); do
  order=(smtp-source smtp-load)
  [ $((round % 2)) = 0 ] && order=(smtp-load smtp-source)
  for gen in "${order[@]}"; do
    if [ "$gen" = smtp-source ]; then
      read -r wall cpu < <(timed smtp-source -s "$PROCS" -m "$MSGS" -l "$SIZE" -f sender@client.example -t rcpt@bench.example "127.0.0.1:$PORT")
    else
      read -r wall cpu < <(timed "$LOADGEN" --server "127.0.0.1:$PORT" --tls none --from sender@client.example --to rcpt@bench.example \
        --concurrency "$PROCS" --sessions "$MSGS" --size "$SIZE")
    fi
    rate=$(awk -v n="$MSGS" -v w="$wall" 'BEGIN { printf "%.1f", n / w }')
    per=$(awk -v n="$MSGS" -v c="$cpu" 'BEGIN { printf "%.3f", 1000 * c / n }')
    RATE[$gen]+="$rate "
    CPU[$gen]+="$per "
    printf '%-12s round %s  %s messages in %6.2fs: %7.1f messages/s, generator CPU %s ms/message\n' "$gen" "$round" "$MSGS" "$wall" "$rate" "$per"
  done
done
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
src=$(median ${RATE[smtp-source]}); ld=$(median ${RATE[smtp-load]})
# shellcheck disable=SC2086
echo "median messages/s: smtp-source $src, smtp-load $ld (ratio $(awk -v a="$ld" -v b="$src" 'BEGIN { printf "%.2f", a / b }'));" \
  "generator CPU ms/message: smtp-source $(median ${CPU[smtp-source]}), smtp-load $(median ${CPU[smtp-load]})"
