#!/usr/bin/env bash
# Checks bench/auth_client.py against Postfix's smtp-source on the plain MX
# path (no TLS, no AUTH), so that its submission figures can be trusted:
# one port25 MX, the same sessions (one message of SIZE bytes each, PROCS in
# parallel) from smtp-source and from auth_client.py in "plain" mode, each
# reported as messages/s. If the Python generator is much slower than
# smtp-source, it is the bottleneck and its figures are a floor, not a
# measure of the server.
#
# Usage: bench/loadgen-check.sh     (needs smtp-source: apt-get install postfix)
# Env:   PROCS=4 MSGS=2000 SIZE=2048 SECONDS_EACH=10 PORT=2528
#        PORT25_BIN=target/release/port25 (built if missing); KEEP=1
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROCS=${PROCS:-4}
MSGS=${MSGS:-2000}
SIZE=${SIZE:-2048}
SECONDS_EACH=${SECONDS_EACH:-10}
PORT=${PORT:-2528}
PORT25_BIN=${PORT25_BIN:-$ROOT/target/release/port25}
KEEP=${KEEP:-0}
command -v smtp-source >/dev/null || { echo "FAIL: smtp-source missing (apt-get install postfix)" >&2; exit 1; }
[ -x "$PORT25_BIN" ] || (cd "$ROOT" && cargo build --release -p port25)

WORK=$(mktemp -d /var/tmp/port25-loadgen.XXXXXX)
P25_PID=
cleanup() {
  set +e
  [ -n "$P25_PID" ] && kill "$P25_PID" 2>/dev/null && wait "$P25_PID" 2>/dev/null
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

cat >"$WORK/port25.toml" <<EOF
hostname = "bench-port25.localdomain"
data_dir = "$WORK/data"
[log]
level = "warn"
[mx]
domains = ["bench.example"]
[[listener]]
name = "mx"
address = "127.0.0.1:$PORT"
tls = "none"
EOF
"$PORT25_BIN" serve --config "$WORK/port25.toml" 2>"$WORK/port25.log" &
P25_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

echo "load generator check on the plain MX path: $PROCS parallel sessions, one ${SIZE}-byte message each"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
smtp-source -s "$PROCS" -m "$MSGS" -l "$SIZE" -f sender@client.example -t rcpt@bench.example "127.0.0.1:$PORT"
end=$(date +%s.%N)
echo "smtp-source     $(awk -v n="$MSGS" -v a="$start" -v b="$end" 'BEGIN { printf "%d messages in %.2fs: %.1f messages/s", n, b - a, n / (b - a) }')"
echo "auth_client.py  $(python3 "$ROOT/bench/auth_client.py" 127.0.0.1 "$PORT" plain rcpt@bench.example - "$PROCS" "$SECONDS_EACH" 1 "$SIZE")"
