#!/usr/bin/env bash
# Outbound delivery benchmark: Postfix vs port25's outbound queue (issue 3).
#
# Both relay everything to one local Postfix `smtp-sink` (Postfix:
# relayhost; port25: [outbound] smarthost), with the same per-destination
# concurrency (Postfix's default, 20). Each round first QUEUES $MSGS
# messages of $MSGLEN bytes with delivery held (Postfix: defer_transports =
# smtp; port25: `port25 queue hold`), injected by the same smtp-source
# command; then releases delivery (Postfix: defer_transports empty, reload,
# postqueue -f; port25: `port25 queue release`) and times, by wall clock,
# until the queue is empty (Postfix: no queue files left; port25: every
# recipient in outbound/history.log). Reports msgs/s per run, the medians
# and the ratio port25/Postfix. Run as root.
#
# Env: ROUNDS=3 MSGS=20000 MSGLEN=2000 SESSIONS=20 CONCURRENCY=20
#      SINK_PORT=2630 PF_PORT=2631 P25_PORT=2632 KEEP=1 (keep temp dir)
#      PORT25_BIN=target/release/port25 (built if missing)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
MSGS=${MSGS:-20000}
MSGLEN=${MSGLEN:-2000}
SESSIONS=${SESSIONS:-20}
CONCURRENCY=${CONCURRENCY:-20}
SINK_PORT=${SINK_PORT:-2630}
PF_PORT=${PF_PORT:-2631}
P25_PORT=${P25_PORT:-2632}
TIMEOUT=${TIMEOUT:-600}
KEEP=${KEEP:-0}
PORT25_BIN=${PORT25_BIN:-$ROOT/target/release/port25}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (Postfix needs it)"
install_postfix
[ -x "$PORT25_BIN" ] || (cd "$ROOT" && cargo build --release -p port25)

WORK=$(mktemp -d /var/tmp/port25-outbench.XXXXXX)
chmod 755 "$WORK"
PF=$WORK/postfix
SINK_PID=
P25_PID=
cleanup() {
    set +e
    [ -n "$P25_PID" ] && kill -TERM "$P25_PID" 2>/dev/null && wait "$P25_PID" 2>/dev/null
    [ -f "$PF/etc/main.cf" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }

# --- the sink both deliver to ----------------------------------------------------
smtp-sink -u postfix 127.0.0.1:$SINK_PORT 1024 &
SINK_PID=$!
wait_port $SINK_PORT 10 || die "smtp-sink did not start"

# --- Postfix -----------------------------------------------------------------------
mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
chown postfix "$PF/data"
pf_main() { # $1: defer_transports value
    cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $PF/etc
queue_directory = $PF/queue
data_directory = $PF/data
maillog_file = $PF/maillog
maillog_file_prefixes = /var, /dev/stdout, $WORK
myhostname = bench-postfix.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
biff = no
relayhost = [127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
default_destination_concurrency_limit = $CONCURRENCY
defer_transports = $1
EOF
}
pf_main smtp
postfix_master_cf "127.0.0.1:$PF_PORT inet n - n - - smtpd" >"$PF/etc/master.cf"
postfix -c "$PF/etc" check >/dev/null 2>&1 || true
postfix -c "$PF/etc" start >/dev/null 2>&1 || die "postfix did not start"
wait_port $PF_PORT 20 || die "postfix smtpd not listening"
PF_VERSION=$(postconf -c "$PF/etc" -h mail_version)
pf_files() { find "$@" -type f 2>/dev/null | wc -l; }
Q=$PF/queue

# --- port25 --------------------------------------------------------------------------
P25=$WORK/port25
mkdir -p "$P25"
cat >"$P25/port25.toml" <<EOF
hostname = "bench-port25.localdomain"
data_dir = "$P25/data"
[log]
level = "warn"
# No HTTP listener: a port25 serve already running on :8025 would stop this one.
[http]
enabled = false
[mx]
domains = ["bench.example"]
[submission]
trusted_networks = ["127.0.0.0/8"]
messages_per_hour = 0
messages_per_day = 0
recipients_per_hour = 0
recipients_per_day = 0
[outbound]
hold = true
smarthost = "127.0.0.1:$SINK_PORT"
connections_per_destination = $CONCURRENCY
nameservers = ["127.0.0.1"]
[[listener]]
name = "submission"
address = "127.0.0.1:$P25_PORT"
service = "submission"
tls = "none"
plaintext_auth = true
max_connections = 1000
EOF
"$PORT25_BIN" serve --config "$P25/port25.toml" 2>"$P25/log" &
P25_PID=$!
wait_port $P25_PORT 20 || { cat "$P25/log"; die "port25 did not start"; }
p25_finished() { if [ -f "$P25/data/outbound/history.log" ]; then wc -l <"$P25/data/outbound/history.log"; else echo 0; fi; }

inject() { # port
    smtp-source -s "$SESSIONS" -m "$MSGS" -l "$MSGLEN" -f sender@bench.example -t rcpt@sink.example "127.0.0.1:$1"
}

run_postfix() {
    inject "$PF_PORT" || die "smtp-source into postfix failed"
    local i
    for ((i = 0; i < 600; i++)); do [ "$(pf_files "$Q/incoming" "$Q/active" "$Q/maildrop")" = 0 ] && break; sleep 0.2; done
    [ "$(pf_files "$Q/deferred")" -ge "$MSGS" ] || die "postfix deferred only $(pf_files "$Q/deferred") of $MSGS"
    pf_main ""
    local t0 t1
    t0=$(now)
    postfix -c "$PF/etc" reload >/dev/null 2>&1
    postqueue -c "$PF/etc" -f
    local deadline=$(($(date +%s) + TIMEOUT))
    while [ "$(pf_files "$Q/incoming" "$Q/active" "$Q/deferred" "$Q/maildrop")" != 0 ]; do
        [ "$(date +%s)" -lt $deadline ] || die "postfix did not empty its queue"
        sleep 0.05
    done
    t1=$(now)
    pf_main smtp
    postfix -c "$PF/etc" reload >/dev/null 2>&1
    echo "$t0 $t1" | awk -v n="$MSGS" '{ printf "%.1f", n / ($2 - $1) }'
}

run_port25() {
    "$PORT25_BIN" queue hold --data-dir "$P25/data" >/dev/null
    sleep 1.2
    inject "$P25_PORT" || die "smtp-source into port25 failed"
    # Runs in a subshell ($(...)): the target comes from the history file.
    local target=$(($(p25_finished) + MSGS)) t0 t1
    t0=$(now)
    "$PORT25_BIN" queue release --data-dir "$P25/data" >/dev/null
    local deadline=$(($(date +%s) + TIMEOUT))
    while [ "$(p25_finished)" -lt $target ]; do
        [ "$(date +%s)" -lt $deadline ] || die "port25 delivered only $(p25_finished) of $target"
        sleep 0.05
    done
    t1=$(now)
    [ "$(grep -c "$(printf '\tdelivered\t')" "$P25/data/outbound/history.log")" = "$target" ] || die "port25: not every recipient was delivered"
    echo "$t0 $t1" | awk -v n="$MSGS" '{ printf "%.1f", n / ($2 - $1) }'
}

echo "outbound benchmark: $MSGS messages of $MSGLEN bytes queued, then delivered to smtp-sink; concurrency $CONCURRENCY; Postfix $PF_VERSION; $(nproc) CPUs"
PF_RATES=()
P25_RATES=()
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        p=$(run_postfix); echo "round $r postfix: $p msgs/s"; PF_RATES+=("$p")
        q=$(run_port25); echo "round $r port25:  $q msgs/s"; P25_RATES+=("$q")
    else
        q=$(run_port25); echo "round $r port25:  $q msgs/s"; P25_RATES+=("$q")
        p=$(run_postfix); echo "round $r postfix: $p msgs/s"; PF_RATES+=("$p")
    fi
done
PF_MED=$(median "${PF_RATES[@]}")
P25_MED=$(median "${P25_RATES[@]}")
echo "median postfix: $PF_MED msgs/s"
echo "median port25:  $P25_MED msgs/s"
echo "ratio port25/postfix: $(awk -v a="$P25_MED" -v b="$PF_MED" 'BEGIN { printf "%.2f", a / b }')"
