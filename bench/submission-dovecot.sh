#!/usr/bin/env bash
# Submission with logins checked by Dovecot, side by side (issue 16): Postfix
# (smtpd_sasl_type = dovecot) and port25 ([submission.directory] type =
# "dovecot"), both asking the SAME Dovecot 2.3 auth server (a passwd-file
# user with a SHA512-CRYPT hash, one UNIX auth-client socket each) for every
# login; Dovecot's auth cache on (AUTH_CACHE=1, as a provider runs it: then
# the servers' own costs show) or off (AUTH_CACHE=0: every login pays
# Dovecot's SHA512-CRYPT, the same for both); nothing else differs from
# bench/submission-vs-postfix.sh (STARTTLS required as on 587, or implicit
# TLS with MODE=implicit; sender bound to the login; virtual Maildir;
# sending limits off; fsync before 250).
#
# The same load generator (smtp-load, bench/loadgen) runs against each:
# PROCS concurrent clients doing sessions back to back for SECONDS_EACH:
# STARTTLS, EHLO, AUTH PLAIN, one SIZE-byte message, QUIT (sessions/s).
# ROUNDS rounds, the servers' order rotating; per run the rate and the
# server's CPU time per session (Dovecot's not included: both pay it); then
# the medians and the ratio of medians. After each run the script waits
# until the server's Maildir holds every message it accepted.
#
# SHARED=1 (issue 16, the cost of sharing the limits across nodes): no
# Postfix; three port25 nodes, the same configuration and load, with the
# sending limits and the session cap ON (LIMIT messages and recipients per
# hour and per day, high enough never to refuse) kept in-process
# ("port25"), in one Redis ("port25-redis", [submission.shared] redis) and
# in one PostgreSQL ("port25-postgresql", backend = "postgresql"); each
# store started here (redis-server; initdb + pg_ctl as nobody). Reported:
# the medians and the throughput each shared store loses against the
# in-process limits (goal: under 10 %), and what Redis itself spends: its
# CPU per session during the port25-redis runs (on a machine whose CPUs
# the load generator shares, that is throughput lost) and EVALSHA's
# usec_per_call (INFO commandstats). REDIS_SLOWLOG=1 also logs every
# command Redis runs (slowlog-log-slower-than 0, which costs Redis a
# little) and prints each script's calls and microseconds per call, named
# by the keys it touches.
# TOGETHER=1 (with SHARED=1): the in-process node and one shared-store node
# loaded at the same time, each by its own smtp-load (PROCS clients each),
# first with the Redis node, then with the PostgreSQL one: both see the
# same neighbours, so a round's ratio (shared / in-process, of sessions/s
# and of the node's CPU per session) is not the machine's drift between
# two runs, which on this 2-CPU machine moved one node's rounds by up to
# 1.5x. The medians of the per-round ratios are reported. redis-server's
# CPU then slows both nodes of the pair alike (a provider runs it on
# another host): the ratio is the node's own cost; redis-server's is
# printed beside it.
# AB_BIN=path (with SHARED=1 TOGETHER=1): a fourth node, "port25-redis-ab",
# runs that binary against the same Redis, and the pairs are that node
# and port25-redis (PORT25_BIN) instead: two builds' Redis nodes side by
# side under the same load, ratio AB_BIN / PORT25_BIN (the machine's
# noise moved the two runs of one build 10 points apart this way).
# PG_PAIRS=0 leaves the PostgreSQL pairs out.
#
# Usage: bench/submission-dovecot.sh     (as root; installs postfix and
#        dovecot-core if missing)
#        SHARED=1 bench/submission-dovecot.sh   (also needs redis-server and
#        postgresql)
# Env:   AUTH_CACHE=1 MODE=starttls|implicit PROCS=4 SECONDS_EACH=10 SIZE=2048 ROUNDS=3 PF_PORT=4671 P25_PORT=4672
#        SHARED=0 LIMIT=10000000 REDIS_PORT=4673 PG_PORT=4674 SHARED_POOL=4 REDIS_SLOWLOG=0 TOGETHER=0 AB_BIN= PG_PAIRS=1
#        PORT25_BIN=target/release/port25 LOADGEN=target/release/smtp-load (built if missing); KEEP=1
#        WORK_PARENT=/var/tmp: where the servers' Maildirs, Dovecot, Redis and PostgreSQL
#        go. A tmpfs takes ext4's per-directory inode allocation (a third of the
#        servers' kernel time in a profile on this machine) out of the comparison.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROCS=${PROCS:-4}
MODE=${MODE:-starttls}
case $MODE in
  starttls) PF_WRAPPER= ;;
  implicit) PF_WRAPPER="-o smtpd_tls_wrappermode=yes" ;;
  *) echo "FAIL: MODE must be starttls or implicit" >&2; exit 1 ;;
esac
SECONDS_EACH=${SECONDS_EACH:-10}
AUTH_CACHE=${AUTH_CACHE:-1}
SIZE=${SIZE:-2048}
PF_PORT=${PF_PORT:-4671}
P25_PORT=${P25_PORT:-4672}
PORT25_BIN=${PORT25_BIN:-$ROOT/target/release/port25}
LOADGEN=${LOADGEN:-$ROOT/target/release/smtp-load}
KEEP=${KEEP:-0}
ROUNDS=${ROUNDS:-3}
SHARED=${SHARED:-0}
LIMIT=${LIMIT:-10000000}
REDIS_PORT=${REDIS_PORT:-4673}
PG_PORT=${PG_PORT:-4674}
SHARED_POOL=${SHARED_POOL:-4}
AB_BIN=${AB_BIN:-}
PG_PAIRS=${PG_PAIRS:-1}
REDIS_SLOWLOG=${REDIS_SLOWLOG:-0}
TOGETHER=${TOGETHER:-0}
DOMAIN=bench.example
LOGIN=bench@$DOMAIN
PASSWORD='bench password'

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (Postfix needs it)"
if [ "$SHARED" = 1 ]; then
  command -v dovecot >/dev/null || apt-get install -y -q dovecot-core >/dev/null
  command -v redis-server >/dev/null || die "redis-server (Debian redis-server) is not installed"
  PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort | tail -1)
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL (Debian postgresql) is not installed"
else
  install_postfix dovecot-core
fi
command -v dovecot >/dev/null || die "dovecot (dovecot-core) is not installed"
{ [ -x "$PORT25_BIN" ] && [ -x "$LOADGEN" ]; } || (cd "$ROOT" && cargo build --release -p port25 -p port25-loadgen)

WORK=$(mktemp -d "${WORK_PARENT:-/var/tmp}/port25-dovecotbench.XXXXXX")
chmod 755 "$WORK"
PF=$WORK/postfix
P25_PID=
DV_PID=
RD_PID=
P25R_PID=
P25G_PID=
P25AB_PID=
cleanup() {
  set +e
  [ -n "$P25_PID" ] && kill "$P25_PID" 2>/dev/null && wait "$P25_PID" 2>/dev/null
  [ -n "$P25R_PID" ] && kill "$P25R_PID" 2>/dev/null && wait "$P25R_PID" 2>/dev/null
  [ -n "$P25G_PID" ] && kill "$P25G_PID" 2>/dev/null && wait "$P25G_PID" 2>/dev/null
  [ -n "$P25AB_PID" ] && kill "$P25AB_PID" 2>/dev/null && wait "$P25AB_PID" 2>/dev/null
  [ -n "$RD_PID" ] && kill "$RD_PID" 2>/dev/null && wait "$RD_PID" 2>/dev/null
  [ -d "$WORK/pg/data" ] && runuser -u nobody -- "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1
  [ -n "$DV_PID" ] && kill "$DV_PID" 2>/dev/null && wait "$DV_PID" 2>/dev/null
  [ -f "$PF/etc/main.cf" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT


# --- Dovecot: the one auth server both ask ---------------------------------------
DV=$WORK/dovecot
mkdir -p "$DV"
HASH=$(doveadm pw -s SHA512-CRYPT -p "$PASSWORD")
echo "$LOGIN:$HASH::::::" >"$DV/passwd"
cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
protocols =
ssl = no
auth_mechanisms = plain login
auth_cache_size = $([ "$AUTH_CACHE" = 1 ] && echo 10M || echo 0)
auth_cache_ttl = 1 hour
passdb {
  driver = passwd-file
  args = $DV/passwd
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=$DV/home/%u
}
service auth {
  unix_listener $DV/auth-postfix {
    mode = 0666
  }
  unix_listener $DV/auth-port25 {
    mode = 0666
  }
}
EOF
dovecot -F -c "$DV/dovecot.conf" &
DV_PID=$!
for _ in $(seq 100); do [ -S "$DV/auth-port25" ] && [ -S "$DV/auth-postfix" ] && break; sleep 0.1; done
[ -S "$DV/auth-port25" ] || die "dovecot did not start (see $DV/dovecot.log)"

# --- Postfix with Dovecot SASL --------------------------------------------------
if [ "$SHARED" != 1 ]; then
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/vmail"
chown nobody:nogroup "$PF/vmail"
chown postfix "$PF/data"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PF/etc/tls.key" -out "$PF/etc/tls.crt" \
  -days 2 -subj "/CN=bench-postfix.localdomain" 2>/dev/null
cat >"$PF/etc/main.cf" <<EOF
# Generated by bench/submission-dovecot.sh: a submission server asking Dovecot.
compatibility_level = 3.6
config_directory = $PF/etc
queue_directory = $PF/queue
data_directory = $PF/data
maillog_file = $PF/maillog
myhostname = bench-postfix.localdomain
mydomain = localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks =
biff = no
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $PF/vmail
virtual_mailbox_maps = static:$DOMAIN/bench/
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
smtpd_tls_cert_file = $PF/etc/tls.crt
smtpd_tls_key_file = $PF/etc/tls.key
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DV/auth-postfix
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_sender_login_maps = static:$LOGIN
smtpd_sender_restrictions = reject_sender_login_mismatch
EOF
postfix_master_cf "127.0.0.1:$PF_PORT inet n - n - - smtpd $PF_WRAPPER" >"$PF/etc/master.cf"
postfix -c "$PF/etc" check >/dev/null 2>&1 || true
postfix -c "$PF/etc" start >/dev/null 2>&1 || die "postfix did not start (see $PF/maillog)"
wait_port "$PF_PORT" 10 tcp || die "postfix is not listening on $PF_PORT"
fi

# --- SHARED=1: the stores ------------------------------------------------------------
if [ "$SHARED" = 1 ]; then
  mkdir -p "$WORK/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save "" --appendonly no >/dev/null &
  RD_PID=$!
  wait_port "$REDIS_PORT" 10 tcp || die "redis-server is not listening on $REDIS_PORT"
  if [ "$REDIS_SLOWLOG" = 1 ]; then
    redis-cli -p "$REDIS_PORT" CONFIG SET slowlog-log-slower-than 0 >/dev/null
    redis-cli -p "$REDIS_PORT" CONFIG SET slowlog-max-len 1000000 >/dev/null
  fi
  mkdir -p "$WORK/pg"
  chown nobody "$WORK/pg"
  runuser -u nobody -- "$PG_BIN/initdb" -D "$WORK/pg/data" --auth-local=trust -U nobody >/dev/null
  runuser -u nobody -- "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/pg.log" -w \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" start >/dev/null || die "postgresql did not start (see $WORK/pg/pg.log)"
fi

# --- port25, asking the same Dovecot ----------------------------------------------
start_port25() { # bin dir port [shared keys] -> sets STARTED_PID
  mkdir -p "$2"
  local limits=0 shared=
  if [ "$SHARED" = 1 ]; then limits=$LIMIT; fi
  # timeout_ms 2000: on this 2-CPU machine under the bench's load (a
  # paired run: two nodes, two generators, Dovecot and the store) an
  # answer has taken longer than the default 250 ms, and a 454 ends the
  # run; the bench measures throughput, not the timeout.
  if [ -n "${4:-}" ]; then shared=$(printf '[submission.shared]\n%s\npool = %s\ntimeout_ms = 2000\n' "$4" "$SHARED_POOL"); fi
  cat >"$2/port25.toml" <<EOF
hostname = "bench-port25.localdomain"
data_dir = "$2/data"
[log]
level = "warn"
# No HTTP listener: a port25 serve already running on :8025 would stop this one.
[http]
enabled = false
[mx]
domains = ["$DOMAIN"]
# The one mailbox, listed (as Postfix's static virtual_mailbox_maps): no
# recipient lookup on either side.
recipients = ["$LOGIN"]
[submission]
messages_per_hour = $limits
messages_per_day = $limits
recipients_per_hour = $limits
recipients_per_day = $limits
# PROCS sessions of one login from one address, whatever PROCS is.
max_sessions_per_login = 100000
auth_in_flight_per_address = 100000
[submission.directory]
type = "dovecot"
auth_socket = "$DV/auth-port25"
$shared
[[listener]]
name = "submissions"
address = "127.0.0.1:$3"
service = "submission"
tls = "$MODE"
EOF
  # Something else on the port would answer the load instead (another
  # bench's server): refuse.
  if ss -Hltn "sport = :$3" | grep -q .; then die "port $3 is already in use: set P25_PORT to another base"; fi
  "$1" serve --config "$2/port25.toml" 2>"$2/port25.log" &
  STARTED_PID=$!
  wait_port "$3" 10 tcp || die "$1 is not listening on $3"
}
start_port25 "$PORT25_BIN" "$WORK/port25" "$P25_PORT"
P25_PID=$STARTED_PID
SERVERS=(postfix port25)
if [ "$SHARED" = 1 ]; then
  start_port25 "$PORT25_BIN" "$WORK/port25-redis" $((P25_PORT + 10)) "redis = \"redis://127.0.0.1:$REDIS_PORT/0\""
  P25R_PID=$STARTED_PID
  start_port25 "$PORT25_BIN" "$WORK/port25-postgresql" $((P25_PORT + 11)) \
    "backend = \"postgresql\"
connection = \"host=$WORK/pg port=$PG_PORT user=nobody dbname=postgres\""
  P25G_PID=$STARTED_PID
  SERVERS=(port25 port25-redis port25-postgresql)
  if [ -n "$AB_BIN" ]; then
    start_port25 "$AB_BIN" "$WORK/port25-redis-ab" $((P25_PORT + 12)) "redis = \"redis://127.0.0.1:$REDIS_PORT/0\""
    P25AB_PID=$STARTED_PID
    SERVERS+=(port25-redis-ab)
  fi
fi

# CPU ticks used so far by one server (as bench/smtp-accept.sh). port25: the
# process. Postfix: master + its reaped children + the children alive.
server_ticks() { # name
  case $1 in
    port25) ticks_of "$P25_PID" ;;
    port25-redis) ticks_of "$P25R_PID" ;;
    port25-postgresql) ticks_of "$P25G_PID" ;;
    port25-redis-ab) ticks_of "$P25AB_PID" ;;
    postfix) postfix_ticks "$PF/queue" ;;
  esac
}
HZ=$(getconf CLK_TCK)
port_of() { case $1 in postfix) echo "$PF_PORT" ;; port25) echo "$P25_PORT" ;; port25-redis) echo $((P25_PORT + 10)) ;; port25-postgresql) echo $((P25_PORT + 11)) ;; port25-redis-ab) echo $((P25_PORT + 12)) ;; esac; }
unit_of() { if [ "$1" = 1 ]; then echo session; else echo message; fi; }

load() { # port msgs
  "$LOADGEN" --server "127.0.0.1:$1" --tls "$MODE" --login "$LOGIN" --password "$PASSWORD" \
    --concurrency "$PROCS" --seconds "$SECONDS_EACH" --messages "$2" --size "$SIZE"
}
# Each server's Maildir (the bench login's), and a wait until it holds every
# message the server accepted so far: nothing lost, and each run starts
# from an idle server instead of one still delivering the previous run.
maildir_of() { case $1 in postfix) echo "$PF/vmail/$DOMAIN/bench/new" ;; *) echo "$WORK/$1/data/mail/$DOMAIN/bench/new" ;; esac; }
declare -A ACCEPTED
drain() { # name
  local dir got i
  dir=$(maildir_of "$1")
  for ((i = 0; i < 600; i++)); do
    got=$(find "$dir" -maxdepth 1 -type f 2>/dev/null | wc -l)
    [ "$got" -ge "${ACCEPTED[$1]}" ] && break
    sleep 0.1
  done
  [ "$got" = "${ACCEPTED[$1]}" ] || die "$1: $got messages in $dir, expected ${ACCEPTED[$1]}"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# Milliseconds of CPU per unit: TICKS clock ticks over N units, DIGITS decimals.
per_unit() { awk -v t="$1" -v hz="$HZ" -v n="$2" -v d="${3:-3}" 'BEGIN { printf "%.*f", d, n ? 1000 * t / hz / n : 0 }'; }
# What redis-server counted of the scripts (calls, microseconds per call).
redis_stats() { redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' | grep -E '^cmdstat_(evalsha|eval|script|hscan):' | sed 's/^/redis /'; }
[ "$SHARED" = 1 ] && echo "SHARED=1: sending limits ($LIMIT per hour and per day) and the session cap in-process, in Redis $(redis-server --version | grep -o 'v=[0-9.]*'), in PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'); pool $SHARED_POOL"
echo "submission benchmark, logins checked by Dovecot $(dovecot --version | cut -d" " -f1) (auth cache $([ "$AUTH_CACHE" = 1 ] && echo on || echo off)): $MODE TLS + AUTH PLAIN, $PROCS clients, ${SECONDS_EACH}s per run, ${SIZE}-byte messages, $ROUNDS rounds"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RATES CPU
REDIS_TICKS=0
REDIS_SESSIONS=0
if [ "$SHARED" = 1 ] && [ "$TOGETHER" = 1 ]; then
  # One run of two nodes loaded at once, the first one's generator
  # started first; sets P_RATE[node] (sessions/s), P_CPU[node] (ms per
  # session) and P_SESSIONS[node] for both. Each node's mail is drained
  # before its CPU is read.
  declare -A P_RATE P_CPU P_SESSIONS
  pair() { # a b
    local n out
    local -a pids=()
    local -A t0
    for n in "$1" "$2"; do
      t0[$n]=$(server_ticks "$n")
      load "$(port_of "$n")" 1 > "$WORK/load-$n.json" &
      pids+=($!)
    done
    wait "${pids[0]}" || die "smtp-load against $1 failed"
    wait "${pids[1]}" || die "smtp-load against $2 failed"
    for n in "$1" "$2"; do
      out=$(cat "$WORK/load-$n.json")
      ACCEPTED[$n]=$((${ACCEPTED[$n]:-0} + $(field "$out" messages)))
      drain "$n"
      P_RATE[$n]=$(field "$out" sessions_per_s)
      P_SESSIONS[$n]=$(field "$out" sessions)
      P_CPU[$n]=$(per_unit $(($(server_ticks "$n") - ${t0[$n]})) "${P_SESSIONS[$n]}")
    done
  }
  declare -A RATIO CPURATIO
  # The base of each pair, and the nodes paired with it.
  BASE=port25 OTHERS=(port25-redis)
  [ "$PG_PAIRS" = 1 ] && OTHERS+=(port25-postgresql)
  [ -n "$AB_BIN" ] && BASE=port25-redis OTHERS=(port25-redis-ab)
  for round in $(seq "$ROUNDS"); do
    for other in "${OTHERS[@]}"; do
      r0=$(ticks_of "$RD_PID")
      # Which node's generator starts first alternates by round.
      if [ $((round % 2)) = 1 ]; then pair "$BASE" "$other"; else pair "$other" "$BASE"; fi
      ra=${P_RATE[$BASE]} ca=${P_CPU[$BASE]} rb=${P_RATE[$other]} cb=${P_CPU[$other]}
      if [ "$other" != port25-postgresql ]; then
        REDIS_TICKS=$((REDIS_TICKS + $(ticks_of "$RD_PID") - r0))
        REDIS_SESSIONS=$((REDIS_SESSIONS + ${P_SESSIONS[$other]}))
        # With AB_BIN both nodes of the pair use Redis.
        [ -n "$AB_BIN" ] && REDIS_SESSIONS=$((REDIS_SESSIONS + ${P_SESSIONS[$BASE]}))
      fi
      ratio=$(awk -v a="$rb" -v b="$ra" 'BEGIN { printf "%.4f", b ? a / b : 0 }')
      cratio=$(awk -v a="$cb" -v b="$ca" 'BEGIN { printf "%.4f", b ? a / b : 0 }')
      RATIO[$other]+="$ratio "
      CPURATIO[$other]+="$cratio "
      printf 'round %s  %s %s sessions/s %s ms/session  %s %s sessions/s %s ms/session  ratio %s  CPU ratio %s\n' \
        "$round" "$BASE" "$ra" "$ca" "$other" "$rb" "$cb" "$ratio" "$cratio"
    done
  done
  echo
  echo "every accepted message is in its server's Maildir: $(for n in "${SERVERS[@]}"; do printf '%s %s  ' "$n" "${ACCEPTED[$n]:-0}"; done)"
  echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for other in "${OTHERS[@]}"; do
    # shellcheck disable=SC2086
    med=$(median ${RATIO[$other]})
    # shellcheck disable=SC2086
    cmed=$(median ${CPURATIO[$other]})
    printf 'together %-18s sessions/s ratio to %s per round: %s median %s  lost %s  node CPU/session ratio median %s\n' "$other" "$BASE" "${RATIO[$other]}" "$med" \
      "$(awk -v a="$med" 'BEGIN { printf "%.1f %%", 100 * (1 - a) }')" "$cmed"
  done
  echo "redis-server CPU during the Redis pairs: $(per_unit "$REDIS_TICKS" "$REDIS_SESSIONS") ms per Redis-node session"
  redis_stats
  exit 0
fi
for msgs in 1; do
  if [ "$msgs" = 1 ]; then key=sessions_per_s; count=sessions; else key=messages_per_s; count=messages; fi
  for round in $(seq "$ROUNDS"); do
    n=${#SERVERS[@]}
    for k in $(seq 0 $((n - 1))); do
      name=${SERVERS[$(((k + round - 1) % n))]}
      t0=$(server_ticks "$name")
      r0=$(ticks_of "${RD_PID:-0}")
      out=$(load "$(port_of "$name")" "$msgs")
      ACCEPTED[$name]=$((${ACCEPTED[$name]:-0} + $(field "$out" messages)))
      drain "$name"
      # After the drain: the CPU a run costs includes delivering its mail.
      t1=$(server_ticks "$name")
      if [ "$name" = port25-redis ]; then
        REDIS_TICKS=$((REDIS_TICKS + $(ticks_of "$RD_PID") - r0))
        REDIS_SESSIONS=$((REDIS_SESSIONS + $(field "$out" sessions)))
      fi
      rate=$(field "$out" "$key")
      cpu=$(per_unit $((t1 - t0)) "$(field "$out" "$count")" 2)
      RATES[$name,$msgs]+="$rate "
      CPU[$name,$msgs]+="$cpu "
      printf '%-11s MSGS=%-2s round %s  %s  server CPU %s ms/%s\n' "$name" "$msgs" "$round" "$out" "$cpu" "$(unit_of "$msgs")"
    done
  done
done
echo
echo "every accepted message is in its server's Maildir: $(for n in "${SERVERS[@]}"; do printf '%s %s  ' "$n" "${ACCEPTED[$n]:-0}"; done)"
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$SHARED" = 1 ]; then
  # shellcheck disable=SC2086
  base=$(median ${RATES[port25,1]})
  for name in "${SERVERS[@]}"; do
    # shellcheck disable=SC2086
    med=$(median ${RATES[$name,1]})
    # shellcheck disable=SC2086
    cpu=$(median ${CPU[$name,1]})
    printf 'sessions/s %-18s runs: %-24s median %7s  ratio to in-process %5s  lost %6s  server CPU %s ms/session\n' "$name" "${RATES[$name,1]}" "$med" \
      "$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.3f", b ? a / b : 0 }')" \
      "$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.1f %%", b ? 100 * (1 - a / b) : 0 }')" "$cpu"
  done
  echo "redis-server CPU during the port25-redis runs: $(per_unit "$REDIS_TICKS" "$REDIS_SESSIONS") ms/session ($REDIS_SESSIONS sessions)"
  redis_stats
  if [ "$REDIS_SLOWLOG" = 1 ]; then
    # Each entry: id, time, microseconds, [command, args...], client, name.
    # A script is named by its hash and its keys with the login, address
    # and session parts left out (the words before the first '@' or digit).
    redis-cli -p "$REDIS_PORT" --json SLOWLOG GET -1 | python3 -c '
import json, re, sys, collections
calls = collections.defaultdict(lambda: [0, 0])
for e in json.load(sys.stdin):
    args = e[3]
    if not args or args[0].upper() != "EVALSHA":
        continue
    n = int(args[2])
    keys = [re.sub(r"[:][^:]*[@0-9].*$", "", k) for k in args[3:3 + n]]
    c = calls[(args[1][:12], " ".join(keys))]
    c[0] += 1
    c[1] += e[2]
for (sha, keys), (n, us) in sorted(calls.items(), key=lambda kv: -kv[1][1]):
    print("redis script %s %8d calls %7.2f usec_per_call  keys: %s" % (sha, n, us / n, keys))
'
  fi
  exit 0
fi
for msgs in 1; do
  # shellcheck disable=SC2086
  pf=$(median ${RATES[postfix,$msgs]})
  for name in "${SERVERS[@]}"; do
    # shellcheck disable=SC2086
    med=$(median ${RATES[$name,$msgs]})
    # shellcheck disable=SC2086
    cpu=$(median ${CPU[$name,$msgs]})
    printf '%s/s (MSGS=%s) %-11s runs: %-24s median %7s  ratio to postfix %5s  server CPU %s ms/%s\n' "$(unit_of "$msgs")" "$msgs" "$name" "${RATES[$name,$msgs]}" \
      "$med" "$(awk -v a="$med" -v b="$pf" 'BEGIN { printf "%.2f", b ? a / b : 0 }')" "$cpu" "$(unit_of "$msgs")"
  done
done
