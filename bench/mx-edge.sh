#!/usr/bin/env bash
# The MX at the internet's edge with every check on (issue 14, "Speed"):
# Postfix 3.7 with postscreen (DNSBL, pregreet) + postfix-policyd-spf-python
# + OpenDKIM (verifying) + OpenDMARC against port25 with [mx.screen] (DNSBL,
# pregreet, reverse DNS) and [mx.auth] (iprev, SPF, DKIM, DMARC), side by
# side on the same load and the same DNS.
#
# Addresses: the clients and both servers are on $NET.0/24 (default
# 198.18.14.0/24, in RFC 2544's benchmarking range 198.18.0.0/15), not on
# loopback: the script adds $NET.254/24 to `lo` for the run (on loopback
# the kernel makes the whole /24 local, so a client can bind any address in
# it) and removes it at exit. Both servers listen on $NET.254; the good
# clients are $NET.1-100, the listed ones $NET.101-200. Not 127/8 on
# purpose: resolvers answer PTR and A for loopback themselves (hickory,
# port25's, says "localhost" for any 127.x without asking), so the servers
# would not do the same reverse-DNS work.
#
# DNS: one dnsmasq on $DNS_IP:53 answers everything both servers ask: the
# PTR and A records of every client address (FCrDNS holds for the good
# ones: $NET.N <-> mta-N.sender.example; the listed ones are
# dyn-198-18-14-N.pool.isp.example for the default NET, which resolve back
# too), the SPF, DKIM key and DMARC (p=reject) records of sender.example,
# the HELO name's SPF;
# questions for the list bl.bench go on to one rbldnsd ($RBL_IP:53), which
# lists the listed half of the clients. Records carry a TTL of 300 s
# (dnsmasq's local records, rbldnsd's $TTL), so caches can work. port25 is
# pointed at dnsmasq through dns_servers and nameservers; Postfix and its
# helpers (postscreen's dnsblog, smtpd's own PTR and A lookups,
# policyd-spf, OpenDMARC through libresolv, OpenDKIM through libunbound,
# its Nameservers) run in a private mount namespace whose /etc/resolv.conf
# names dnsmasq, so the machine's resolver is untouched. The DNS questions
# per message are the queries dnsmasq logs during a run (from the good and
# the listed sessions), divided by the messages accepted, printed per run
# with a breakdown by purpose: the warm-up runs give the cold figure (every
# client new to the server, its caches empty; also per new client, the
# client addresses asked about), the measured runs the warm one. Before
# trusting the figures the script checks, in dnsmasq's log, that each
# server asked the PTR of good clients and the A of their names during its
# warm-up, and, in every stored message, that the client's name came from
# the DNS: port25's Authentication-Results has iprev=pass naming
# mta-N.sender.example for $NET.N, Postfix's Received line names the
# client mta-N.sender.example (smtpd writes "unknown" when FCrDNS fails).
#
# Load: smtp-load (bench/loadgen, Rust, one thread) runs $GOOD_CONC
# sessions in parallel from the good addresses $NET.1-100 (EHLO
# mta.sender.example, MAIL FROM alice@sender.example, one message of about
# 2.6 KB DKIM-signed once by dkimpy (rsa-sha256, 2048 bits, relaxed/relaxed),
# so SPF, DKIM, DMARC and iprev all pass), and, at the same time, a second
# smtp-load with $LISTED_CONC sessions from the listed addresses
# $NET.101-200 that expects to be refused before the banner. Every
# session is a new connection (as smtp-source without -d). Both servers'
# greet waits are $GREET s (postscreen_greet_wait, greet_wait_ms). First a
# warm-up run per server (every good address passes the screen once and is
# remembered by both; not counted; topped up by at most two short runs
# while dnsmasq's log shows fewer than the 100 good clients met), then
# $ROUNDS rounds of $SECONDS_PER_RUN s, alternating which server goes
# first.
#
# Reported per run: messages/s accepted, listed clients refused/s (and any
# let in), server CPU ms per accepted message (port25: its process;
# Postfix: master and every descendant (smtpd, postscreen, dnsblog,
# cleanup, virtual, the policyd-spf processes of spawn, ...) plus the
# opendkim and opendmarc daemons; the DNS servers in neither), read once
# the server's Maildir holds every message accepted so far: the CPU
# includes delivering them, and the next run starts with an idle server
# (the wait is printed), DNS
# questions per message; then medians and the ratio port25/Postfix. Fails
# when a good session failed (any unexpected reply), a listed session got
# something other than a refusal or the banner, an accepted message is
# missing from the server's Maildir, a delivered message does not carry
# dkim=pass, spf=pass and dmarc=pass in the Authentication-Results field of
# that server (or the client's name from the DNS, above), or a server did
# not ask dnsmasq for the good clients' PTR and A during its warm-up.
#
# Usage: bench/mx-edge.sh     (as root: Postfix, port 53, a mount namespace,
#                             an address on lo)
# Env:   ROUNDS=3 SECONDS_PER_RUN=20 GREET=2 GOOD_CONC=32 LISTED_CONC=16
#        PF_PORT=2546 P25_PORT=2547 DKIM_PORT=8891 DMARC_PORT=8893
#        NET=198.18.14 DNS_IP=127.0.14.53 RBL_IP=127.0.14.54 KEEP=1
#        PORT25_BIN=target/release/port25 LOADGEN=target/release/smtp-load
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
GREET=${GREET:-2}
GOOD_CONC=${GOOD_CONC:-32}
LISTED_CONC=${LISTED_CONC:-16}
PF_PORT=${PF_PORT:-2546}
P25_PORT=${P25_PORT:-2547}
DKIM_PORT=${DKIM_PORT:-8891}
DMARC_PORT=${DMARC_PORT:-8893}
NET=${NET:-198.18.14}
DNS_IP=${DNS_IP:-127.0.14.53}
RBL_IP=${RBL_IP:-127.0.14.54}
PORT25_BIN=${PORT25_BIN:-$ROOT/target/release/port25}
LOADGEN=${LOADGEN:-$ROOT/target/release/smtp-load}
KEEP=${KEEP:-0}
DOMAIN=bench.example
RCPT=rcpt@$DOMAIN
SENDER_DOMAIN=sender.example
SENDER=alice@$SENDER_DOMAIN
HELO=mta.$SENDER_DOMAIN
GOOD=$NET.1-$NET.100
LISTED=$NET.101-$NET.200
SERVER_IP=$NET.254
# wait_port (lib.sh) connects here.
WAIT_HOST=$SERVER_IP
PSL=/usr/share/publicsuffix/public_suffix_list.dat
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (Postfix, DNS on port 53, a mount namespace, an address on lo)"
[[ "$NET" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "NET=$NET: give the first three octets of a /24 (198.18.14)"
REV_NET=$(echo "$NET" | awk -F. '{ print $3 "." $2 "." $1 }')

install_postfix busybox rbldnsd dnsmasq-base opendkim opendmarc postfix-policyd-spf-python python3-dkim publicsuffix
command -v unshare >/dev/null || die "unshare (util-linux) is missing"
{ [ -x "$PORT25_BIN" ] && [ -x "$LOADGEN" ]; } || (cd "$ROOT" && cargo build --release -p port25 -p port25-loadgen)
open_files 16384

WORK=$(mktemp -d /var/tmp/port25-mx-edge.XXXXXX)
chmod 755 "$WORK"
PF=$WORK/postfix
P25=$WORK/port25
DNS=$WORK/dns
P25_PID= RBL_PID= DNSMASQ_PID= NET_ADDED=
cleanup() {
    set +e
    [ -n "$P25_PID" ] && kill -TERM "$P25_PID" 2>/dev/null && wait "$P25_PID" 2>/dev/null
    [ -f "$PF/etc/main.cf" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1
    for f in "$PF/opendkim.pid" "$PF/opendmarc.pid" "$WORK/syslogd.pid"; do [ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; done
    [ -n "$DNSMASQ_PID" ] && kill "$DNSMASQ_PID" 2>/dev/null && wait "$DNSMASQ_PID" 2>/dev/null
    [ -n "$RBL_PID" ] && kill "$RBL_PID" 2>/dev/null && wait "$RBL_PID" 2>/dev/null
    [ -n "$NET_ADDED" ] && ip addr del "$SERVER_IP/24" dev lo
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- the clients' and servers' addresses ------------------------------------------
if ip -4 addr show dev lo | grep -q "inet $NET\."; then
    die "lo already has an address in $NET.0/24 (another run? remove it: ip addr del $SERVER_IP/24 dev lo)"
fi
ip addr add "$SERVER_IP/24" dev lo || die "cannot add $SERVER_IP/24 to lo"
NET_ADDED=1

# --- the message, DKIM-signed once ---------------------------------------------
mkdir -p "$DNS" "$PF" "$P25"
python3 - "$WORK" "$SENDER" "$RCPT" "$SENDER_DOMAIN" <<'EOF'
import sys, dkim
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
import base64
work, sender, rcpt, domain = sys.argv[1:]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
headers = (f"From: Alice <{sender}>\r\nTo: <{rcpt}>\r\nSubject: bench with every check\r\n"
           "Date: Wed, 2 Dec 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
body = "".join(f"line {i:04d} of the bench message, long enough to look like text: {'x' * 10}\r\n" for i in range(24))
msg = (headers + body).encode()
sig = dkim.sign(msg, b"bench", domain.encode(), pem, canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"mime-version", b"content-type"])
open(f"{work}/message.eml", "wb").write(sig + msg)
txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()
# dnsmasq: strings of at most 255 bytes, separated by commas.
open(f"{work}/dkim.txt", "w").write(",".join(txt[i:i + 250] for i in range(0, len(txt), 250)))
EOF
MSG_BYTES=$(wc -c <"$WORK/message.eml")

# --- DNS: rbldnsd for the list, dnsmasq for everything else ------------------------
{
    echo '$TTL 300'
    echo ':127.0.0.2:listed by the bench'
    for i in $(seq 101 200); do echo "$NET.$i"; done
} >"$DNS/bl.zone"
chmod -R a+rX "$DNS"
touch "$DNS/stats" && chown nobody "$DNS/stats"
rbldnsd -n -u nobody -b "$RBL_IP/53" -s "$DNS/stats" -w "$DNS" bl.bench:ip4set:bl.zone >"$DNS/rbldnsd.log" 2>&1 &
RBL_PID=$!
{
    for i in $(seq 1 100); do echo "$NET.$i mta-$i.$SENDER_DOMAIN"; done
    # The listed half: dynamic-looking names that resolve back.
    for i in $(seq 101 200); do echo "$NET.$i dyn-${NET//./-}-$i.pool.isp.example"; done
    echo "$NET.1 $HELO"
} >"$DNS/hosts"
dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
    --listen-address="$DNS_IP" --port=53 --user=root --pid-file="$DNS/dnsmasq.pid" \
    --log-queries --log-facility="$DNS/dnsmasq.log" --local-ttl=300 --cache-size=10000 \
    --addn-hosts="$DNS/hosts" --server="/bl.bench/$RBL_IP" \
    --local=/example/ --local="/$REV_NET.in-addr.arpa/" \
    --txt-record="$SENDER_DOMAIN,v=spf1 ip4:$NET.0/24 -all" \
    --txt-record="$HELO,v=spf1 ip4:$NET.0/24 -all" \
    --txt-record="_dmarc.$SENDER_DOMAIN,v=DMARC1; p=reject" \
    --txt-record="bench._domainkey.$SENDER_DOMAIN,$(cat "$WORK/dkim.txt")" &
DNSMASQ_PID=$!
sleep 1
kill -0 "$RBL_PID" 2>/dev/null || { cat "$DNS/rbldnsd.log"; die "rbldnsd did not start on $RBL_IP:53"; }
kill -0 "$DNSMASQ_PID" 2>/dev/null || die "dnsmasq did not start on $DNS_IP:53"
echo "nameserver $DNS_IP" >"$DNS/resolv.conf"
# The log's length in lines: a run's questions are the lines between two
# readings. dnsmasq writes a line per question it receives (answered from
# its own records, its cache or rbldnsd alike).
dns_lines() { local n; n=$(wc -l <"$DNS/dnsmasq.log" 2>/dev/null) || true; echo "${n:-0}"; }
dns_slice() { # from to
    (($2 > $1)) || return 0 # sed would print line from+1 anyway
    sed -n "$(($1 + 1)),$2p" "$DNS/dnsmasq.log" | grep 'query\[' || true
}
# The questions of a slice by purpose, per accepted message (args: from to
# messages): which of a server's lookups its caches do not cover.
dns_breakdown() {
    dns_slice "$1" "$2" | awk -v m="$3" -v bl=".bl.bench" '
        match($0, /query\[[A-Z0-9]+\] [^ ]+/) {
            split(substr($0, RSTART, RLENGTH), f, " "); t = substr(f[1], 7, length(f[1]) - 7); n = tolower(f[2])
            if (index(n, bl) && index(n, bl) == length(n) - length(bl) + 1) k = "DNSBL"
            else if (t == "PTR") k = "PTR"
            else if (t == "A" || t == "AAAA") k = "A/AAAA"
            else if (t == "TXT" && n ~ /^_dmarc\./) k = "DMARC"
            else if (t == "TXT" && n ~ /\._domainkey\./) k = "DKIM key"
            else if (t == "TXT") k = "SPF"
            else k = t
            c[k]++; all++
        }
        END {
            printf "%d questions", all
            split("DNSBL,PTR,A/AAAA,SPF,DKIM key,DMARC", order, ",")
            sep = ": "
            for (i = 1; i in order; i++) if (order[i] in c) { printf "%s%s %d (%.3f/msg)", sep, order[i], c[order[i]], m ? c[order[i]] / m : 0; sep = ", "; delete c[order[i]] }
            for (k in c) { printf "%s%s %d (%.3f/msg)", sep, k, c[k], m ? c[k] / m : 0; sep = ", " }
            print ""
        }'
}
# Distinct client addresses a slice asked about (PTR or the list), good or
# listed: the new clients a warm-up's questions are spread over.
clients_asked() {
    dns_slice "$1" "$2" | { grep -oE "query\[[A-Z]+\] [0-9]+\.$REV_NET\.(in-addr\.arpa|bl\.bench)" || true; } \
        | awk '{ split($2, o, "."); print o[1] }' | sort -u | wc -l
}
# Distinct names of good clients asked in a slice: PTR of $NET.1-100 and A
# of mta-1..100.sender.example (args: from to).
good_ptr_asked() {
    dns_slice "$1" "$2" | { grep -oE "query\[PTR\] [0-9]+\.$REV_NET\.in-addr\.arpa" || true; } \
        | awk '{ split($2, o, "."); if (o[1] >= 1 && o[1] <= 100) print o[1] }' | sort -u | wc -l
}
good_a_asked() {
    dns_slice "$1" "$2" | { grep -oE "query\[A\] mta-[0-9]+\.$SENDER_DOMAIN" || true; } | sort -u | wc -l
}

# --- Postfix: postscreen + policyd-spf + OpenDKIM + OpenDMARC -------------------
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/vmail"
chown nobody:nogroup "$PF/vmail"
chown postfix "$PF/data"
# No client is internal to the milters (their default is 127.0.0.1, not a
# client here either; 192.0.2.1 is none of the bench's addresses).
echo 192.0.2.1 >"$PF/nobody-internal"
cat >"$PF/policyd-spf.conf" <<EOF
debugLevel = 0
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.1/32
EOF
cat >"$PF/opendkim.conf" <<EOF
Mode                  v
Socket                inet:$DKIM_PORT@127.0.0.1
PidFile               $PF/opendkim.pid
AuthservID            bench-postfix.localdomain
InternalHosts         $PF/nobody-internal
Nameservers           $DNS_IP
QueryCache            no
Syslog                yes
LogWhy                yes
EOF
cat >"$PF/opendmarc.conf" <<EOF
Socket             inet:$DMARC_PORT@127.0.0.1
PidFile            $PF/opendmarc.pid
AuthservID         bench-postfix.localdomain
TrustedAuthservIDs bench-postfix.localdomain
IgnoreHosts        $PF/nobody-internal
RejectFailures     true
SPFSelfValidate    false
SPFIgnoreResults   false
PublicSuffixList   $PSL
FailureReports     false
Syslog             true
EOF
cat >"$PF/etc/main.cf" <<EOF
# Generated by bench/mx-edge.sh
compatibility_level = 3.6
config_directory = $PF/etc
queue_directory = $PF/queue
data_directory = $PF/data
maillog_file = $PF/maillog
myhostname = bench-postfix.localdomain
mydomain = localdomain
mydestination =
inet_interfaces = $SERVER_IP
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtpd_banner = \$myhostname ESMTP
biff = no
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $PF/vmail
virtual_mailbox_maps = static:$DOMAIN/rcpt/
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
# postscreen: DNSBL and pregreet, both "drop" (521 and close).
postscreen_access_list =
postscreen_dnsbl_sites = bl.bench*3
postscreen_dnsbl_threshold = 3
postscreen_dnsbl_action = drop
postscreen_greet_action = drop
postscreen_greet_wait = ${GREET}s
postscreen_cache_map = btree:\$data_directory/postscreen_cache
postscreen_client_connection_count_limit = 1000
smtpd_client_connection_count_limit = 1000
# SPF for HELO and MAIL FROM (Received-SPF, -all rejected).
smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service unix:private/policyd-spf
policyd-spf_time_limit = 3600
# DKIM verification, then DMARC (p=reject enforced) on what it found.
smtpd_milters = inet:127.0.0.1:$DKIM_PORT, inet:127.0.0.1:$DMARC_PORT
milter_default_action = tempfail
EOF
postfix_master_cf "$SERVER_IP:$PF_PORT inet n - n - 1 postscreen
smtpd     pass  -       -       n       -       -       smtpd
dnsblog   unix  -       -       n       -       0       dnsblog
tlsproxy  unix  -       -       n       -       0       tlsproxy
policyd-spf unix -      n       n       -       0       spawn user=nobody argv=/usr/bin/policyd-spf $PF/policyd-spf.conf" >"$PF/etc/master.cf"
chmod a+r "$PF/policyd-spf.conf"
PF_VERSION=$(postconf -c "$PF/etc" -h mail_version 2>/dev/null || echo "?")
postfix -c "$PF/etc" check >/dev/null 2>&1 || true
# Every Postfix-side process resolves through the bench's resolv.conf, and
# logs (the milters and policyd-spf through syslog) to $WORK/syslog: /dev
# in that namespace is a directory with the four devices they use and a
# busybox syslogd's /dev/log, so the machine's /dev and syslog are untouched.
mkdir -p "$WORK/dev"
for n in null zero urandom random; do touch "$WORK/dev/$n"; done
unshare -m --propagation private sh -c "mount --bind '$DNS/resolv.conf' /etc/resolv.conf \
    && for n in null zero urandom random; do mount --bind /dev/\$n '$WORK/dev/'\$n; done \
    && mount --bind '$WORK/dev' /dev \
    && { busybox syslogd -n -O '$WORK/syslog' & echo \$! >'$WORK/syslogd.pid'; } && sleep 1 \
    && opendkim -x '$PF/opendkim.conf' && opendmarc -c '$PF/opendmarc.conf' && postfix -c '$PF/etc' start" \
    >"$PF/start.log" 2>&1 || { cat "$PF/start.log" "$PF/maillog" 2>/dev/null; die "postfix or a milter did not start"; }

# --- port25: [mx.screen] + [mx.auth] ----------------------------------------------
cat >"$P25/port25.toml" <<EOF
# Generated by bench/mx-edge.sh
hostname = "bench-port25.localdomain"
data_dir = "$P25/data"
[log]
level = "warn"
[http]
enabled = false
[mx]
domains = ["$DOMAIN"]
recipients = ["$RCPT"]
[mx.auth]
enabled = true
nameservers = ["$DNS_IP:53"]
public_suffix_list = "$PSL"
[mx.screen]
enabled = true
greet_wait_ms = $((GREET * 1000))
dns_servers = ["$DNS_IP:53"]
threshold = 3
rate_per_address = 0
rate_per_64 = 0
[[mx.screen.dnsbl]]
zone = "bl.bench"
weight = 3
[delivery]
method = "maildir"
[[listener]]
name = "mx"
address = "$SERVER_IP:$P25_PORT"
service = "mx"
tls = "none"
max_connections_per_client = 1000
EOF
"$PORT25_BIN" config check "$P25/port25.toml" >/dev/null
"$PORT25_BIN" serve --config "$P25/port25.toml" >"$P25/stdout.log" 2>"$P25/stderr.log" &
P25_PID=$!

wait_port "$PF_PORT" 30 || { cat "$PF/maillog"; die "postfix not answering on $SERVER_IP:$PF_PORT"; }
wait_port "$P25_PORT" 30 || { cat "$P25/stderr.log"; die "port25 not answering on $SERVER_IP:$P25_PORT"; }
for f in opendkim opendmarc; do [ -s "$PF/$f.pid" ] && kill -0 "$(cat "$PF/$f.pid")" || die "$f is not running"; done

PF_MAILDIR=$PF/vmail/$DOMAIN/rcpt/new
P25_MAILDIR=$P25/data/mail/$DOMAIN/rcpt/new
count_files() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
maildir_of() { if [ "$1" = postfix ]; then echo "$PF_MAILDIR"; else echo "$P25_MAILDIR"; fi; }
# Waits until the server's Maildir holds every message it accepted so far
# and prints the seconds that took: a run's delivery work is done (and
# counted in its CPU) before the next run starts, so no run pays for the
# backlog of the one before it.
drain() { # server
    local dir i start
    dir=$(maildir_of "$1"); start=$(date +%s.%N)
    for ((i = 0; i < 1200; i++)); do
        [ "$(count_files "$dir")" -ge "${ACCEPTED_TOTAL[$1]}" ] && break
        sleep 0.5
    done
    [ "$(count_files "$dir")" -ge "${ACCEPTED_TOTAL[$1]}" ] \
        || die "$1: ${ACCEPTED_TOTAL[$1]} accepted, $(count_files "$dir") in its Maildir after 600 s"
    awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'
}
# Ticks of a process and all its living descendants, each with its reaped
# children's: every process that ran under it is counted once.
tree_ticks() { # pid
    local t c
    t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat" 2>/dev/null || echo 0)
    for c in $(pgrep -P "$1" || true); do t=$((t + $(tree_ticks "$c"))); done
    echo "$t"
}
server_ticks() {
    if [ "$1" = postfix ]; then
        echo $(($(tree_ticks "$(tr -d ' ' <"$PF/queue/pid/master.pid")") + $(ticks_of "$(cat "$PF/opendkim.pid")") + $(ticks_of "$(cat "$PF/opendmarc.pid")")))
    else ticks_of "$P25_PID"; fi
}
port_of() { if [ "$1" = postfix ]; then echo "$PF_PORT"; else echo "$P25_PORT"; fi; }
HZ=$(getconf CLK_TCK)

echo "machine:  $(nproc) CPUs, $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg); postfix $PF_VERSION; $(opendkim -V | head -1); $(opendmarc -V | head -1); $("$PORT25_BIN" --version)"
echo "load:     $GOOD_CONC sessions from $GOOD (one DKIM-signed message of $MSG_BYTES bytes each), $LISTED_CONC from $LISTED (listed, expect refusal), ${SECONDS_PER_RUN}s a run, greet wait ${GREET}s"

# What the Postfix side logged as wrong (the milters' syslog, Postfix's
# warnings): the first lines say which part of it failed.
postfix_side_errors() { # server
    [ "$1" = postfix ] || return 0
    grep -hE 'mail\.(err|crit|alert|emerg)|mail\.warn|warning:' "$WORK/syslog" "$PF/maillog" 2>/dev/null | head -5 >&2 || true
}
declare -A ACCEPTED_TOTAL=([postfix]=0 [port25]=0) COLD_DNSQ
declare -a RATE_postfix RATE_port25 CPU_postfix CPU_port25 DNSQ_postfix DNSQ_port25
json() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(*(d[k] for k in sys.argv[2:]))' "$@"; }
run() { # server seconds label
    local port t0 t1 q0 q1 good listed acc secs lref lin rate cpu qpm waited
    port=$(port_of "$1")
    t0=$(server_ticks "$1"); q0=$(dns_lines)
    "$LOADGEN" --server "$SERVER_IP:$port" --tls none --refused --source "$LISTED" --helo "$HELO" \
        --concurrency "$LISTED_CONC" --seconds "$2" >"$WORK/listed.json" 2>"$WORK/listed.err" &
    local lpid=$!
    good=$("$LOADGEN" --server "$SERVER_IP:$port" --tls none --source "$GOOD" --helo "$HELO" --from "$SENDER" --to "$RCPT" \
        --message "$WORK/message.eml" --concurrency "$GOOD_CONC" --seconds "$2" 2>"$WORK/good.err") \
        || { postfix_side_errors "$1"; die "$1: a good session failed: $(cat "$WORK/good.err") $good"; }
    wait "$lpid" || die "$1: a listed session failed: $(cat "$WORK/listed.err") $(cat "$WORK/listed.json")"
    read -r acc secs < <(json "$good" messages seconds)
    read -r lref lin < <(json "$(cat "$WORK/listed.json")" refused let_in)
    ACCEPTED_TOTAL[$1]=$((ACCEPTED_TOTAL[$1] + acc))
    waited=$(drain "$1")
    t1=$(server_ticks "$1")
    sleep 1 # dnsmasq's last log lines of the run
    q1=$(dns_lines)
    rate=$(awk -v a="$acc" -v s="$secs" 'BEGIN { printf "%.1f", a / s }')
    cpu=$(awk -v t=$((t1 - t0)) -v a="$acc" -v hz="$HZ" 'BEGIN { printf "%.3f", a ? t * 1000 / hz / a : 0 }')
    qpm=$(awk -v q="$(dns_slice "$q0" "$q1" | wc -l)" -v a="$acc" 'BEGIN { printf "%.3f", a ? q / a : 0 }')
    printf '%-8s %-7s %8s msg/s  %6s listed refused/s  %7s ms CPU/msg  %6s DNS q/msg  (listed let in %s; all in the Maildir %ss after the load; load %s)\n' \
        "$1" "$3" "$rate" "$(awk -v l="$lref" -v s="$secs" 'BEGIN { printf "%.1f", l / s }')" "$cpu" "$qpm" "$lin" "$waited" "$(cut -d' ' -f1 /proc/loadavg)"
    printf '         DNS:    %s\n' "$(dns_breakdown "$q0" "$q1" "$acc")"
    if [ "$3" = run ]; then
        if [ "$1" = postfix ]; then RATE_postfix+=("$rate"); CPU_postfix+=("$cpu"); DNSQ_postfix+=("$qpm")
        else RATE_port25+=("$rate"); CPU_port25+=("$cpu"); DNSQ_port25+=("$qpm"); fi
    elif [ "$3" = warmup ]; then
        # Per message, a warm-up's figure depends on how many messages the
        # run took after each client's first one; per new client it does not.
        local clients
        clients=$(clients_asked "$q0" "$q1")
        COLD_DNSQ[$1]="$qpm/msg, $(awk -v q="$(dns_slice "$q0" "$q1" | wc -l)" -v c="$clients" 'BEGIN { printf "%.2f", c ? q / c : 0 }') per new client ($clients met)"
        WARM_FROM=$q0
    fi
    if [ "$3" != run ]; then
        # The reverse-DNS work is real only if the server asked: the PTR of
        # the good clients it met and the A of their names (FCrDNS). Postfix
        # asks for a client once it passed postscreen (smtpd does), port25's
        # screen while the client waits for the banner.
        local ptr a
        ptr=$(good_ptr_asked "$WARM_FROM" "$q1"); a=$(good_a_asked "$WARM_FROM" "$q1")
        printf '         rDNS:   since the warm-up began, asked dnsmasq the PTR of %s of the 100 good clients and the A of %s of their names\n' "$ptr" "$a"
        { [ "$ptr" -gt 0 ] && [ "$a" -gt 0 ]; } || die "$1 did not ask the DNS for its good clients' PTR and A during the warm-up"
        WARM_MET=$ptr
    fi
}

# Warm-up: every good address passes the screen once in both (each good
# session meets 100/GOOD_CONC new addresses, GREET seconds each). On a busy
# machine Postfix may not meet them all in that time: up to two short
# top-ups ("warmup+", not counted either) until the DNS log shows all 100.
WARM_FROM=0 WARM_MET=0
for s in postfix port25; do
    run "$s" $((GREET * (100 / GOOD_CONC + 2) + 3)) warmup
    for ((w = 0; w < 2 && WARM_MET < 100; w++)); do run "$s" $((GREET * 3 + 3)) warmup+; done
done
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then order="postfix port25"; else order="port25 postfix"; fi
    for s in $order; do run "$s" "$SECONDS_PER_RUN" run; done
done

# Every stored message of a server: its own Authentication-Results with
# dkim=pass and dmarc=pass, an SPF pass (port25: spf=pass; Postfix:
# policyd-spf's Received-SPF), and the client's name as the DNS gives it:
# port25's iprev=pass naming mta-N.sender.example for $NET.N, Postfix's
# Received line "(mta-N.sender.example [$NET.N])" (smtpd's FCrDNS; it
# writes "unknown" when the name does not resolve back). One line of
# counts, and the first offending file.
check_stored() { # server dir authserv-id
    python3 - "$@" "$SENDER_DOMAIN" <<'PY'
import os, re, sys
server, d, authserv, domain = sys.argv[1:]
def headers(path):
    with open(path, "rb") as f:
        head = f.read(65536).split(b"\n\n", 1)[0].decode("latin-1").replace("\r", "")
    out = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1] = out[-1] + " " + line.strip()
        elif line:
            out.append(line)
    return [(h.split(":", 1)[0].lower(), " ".join(h.split(":", 1)[1].split())) for h in out if ":" in h]
bad, n, first = {}, 0, None
for name in os.listdir(d):
    path = os.path.join(d, name)
    hs = headers(path)
    ar = " ".join(v for k, v in hs if k == "authentication-results" and v.startswith(authserv))
    spf = " ".join(v for k, v in hs if k == "received-spf")
    received = next((v for k, v in hs if k == "received"), "")
    missing = [w for w in ("dkim=pass", "dmarc=pass") if w not in ar]
    if "spf=pass" not in ar and not spf.startswith("Pass (mailfrom)"):
        missing.append("spf pass")
    if server == "port25":
        m = re.search(r'iprev=pass reason="([0-9.]+) is mta-([0-9]+)\.' + re.escape(domain), ar)
        if not (m and m.group(1).rsplit(".", 1)[1] == m.group(2)):
            missing.append("iprev=pass from the DNS")
    else:
        m = re.search(r"\(mta-([0-9]+)\." + re.escape(domain) + r" \[([0-9.]+)\]\)", received)
        if not (m and m.group(2).rsplit(".", 1)[1] == m.group(1)):
            missing.append("client name from the DNS in Received")
    n += 1
    for w in missing:
        bad[w] = bad.get(w, 0) + 1
    if missing and first is None:
        first = (path, missing, ar, received)
sample = headers(os.path.join(d, sorted(os.listdir(d))[0])) if n else []
print(f"{server:<8} stored:  {n} messages; " + ("every one has its dkim=pass, dmarc=pass, SPF pass and the client's name from the DNS" if not bad
      else "missing: " + ", ".join(f"{w} in {c}" for w, c in bad.items())))
for k, v in sample:
    if (k == "authentication-results" and v.startswith(authserv)) or (k == "received" and server == "postfix"):
        print(f"{'':8} e.g.:    {k}: {v[:300]}")
        if k == "received":
            break
if first:
    print(f"first offending: {first[0]}: {first[1]}; A-R: {first[2]}; Received: {first[3]}")
sys.exit(1 if bad or not n else 0)
PY
}

# Every accepted message reached the server's Maildir, with the checks'
# verdicts in the server's own Authentication-Results field.
for s in postfix port25; do
    dir=$PF_MAILDIR; id=bench-postfix.localdomain
    [ "$s" = port25 ] && { dir=$P25_MAILDIR; id=bench-port25.localdomain; }
    for ((i = 0; i < 300; i++)); do
        [ "$(count_files "$dir")" -ge "${ACCEPTED_TOTAL[$s]}" ] && break
        sleep 1
    done
    [ "$(count_files "$dir")" -ge "${ACCEPTED_TOTAL[$s]}" ] || die "$s: ${ACCEPTED_TOTAL[$s]} accepted, $(count_files "$dir") in its Maildir"
    check_stored "$s" "$dir" "$id" || die "$s: stored messages without the expected verdicts (above)"
done

pf=$(median "${RATE_postfix[@]}"); p25=$(median "${RATE_port25[@]}")
echo "median:   postfix $pf msg/s ($(median "${CPU_postfix[@]}") ms CPU/msg, $(median "${DNSQ_postfix[@]}") DNS q/msg), port25 $p25 msg/s ($(median "${CPU_port25[@]}") ms CPU/msg, $(median "${DNSQ_port25[@]}") DNS q/msg)"
echo "DNS:      cold (warm-up: caches empty, every client new) postfix ${COLD_DNSQ[postfix]}, port25 ${COLD_DNSQ[port25]}"
echo "DNS:      warm (median of the runs) postfix $(median "${DNSQ_postfix[@]}")/msg, port25 $(median "${DNSQ_port25[@]}")/msg"
echo "ratio:    port25/postfix $(awk -v a="$p25" -v b="$pf" 'BEGIN { printf "%.2f", b ? a / b : 0 }') (goal >= 3)"
