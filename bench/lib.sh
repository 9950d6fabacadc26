# Shared by the bench/ scripts that run a peer beside port25 (a throwaway
# Postfix in smtp-accept.sh, submission-vs-postfix.sh, outbound.sh,
# loadgen-check.sh; the Python honeypot in spampot-vs-honeypots.sh):
# sourced, not run. One copy of the Postfix services list, the median and
# the CPU accounting, so the side-by-side scripts measure the same way.

die() { echo "FAIL: $*" >&2; exit 1; }

# Raises this shell's open-file limit to N (a server and its client each
# need one descriptor per session, plus some).
open_files() { # N
  if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$1" ]; then
    ulimit -Hn "$1" 2>/dev/null || die "hard limit on open files is $(ulimit -Hn), need $1 (run as root)"
  fi
  ulimit -n "$1"
}

# Postfix (and its smtp-source / smtp-sink tools) from Debian, configured
# "No configuration" so the package starts nothing of its own; extra
# packages (e.g. Cyrus SASL) as arguments.
install_postfix() {
  local need=() p
  command -v postfix >/dev/null && command -v smtp-source >/dev/null || need+=(postfix)
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  [ ${#need[@]} = 0 ] && return 0
  echo "installing ${need[*]} (debconf: No configuration)"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
}

# Waits until something on WAIT_HOST:PORT (WAIT_HOST: 127.0.0.1 unless the
# script sets it) answers 220 (SMTP greeting) or, with tcp as the third
# argument, merely accepts (implicit TLS listeners).
wait_port() { # port seconds [tcp]
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if [ "${3:-}" = tcp ]; then
      (exec 3<>"/dev/tcp/${WAIT_HOST:-127.0.0.1}/$1") 2>/dev/null && return 0
    elif timeout 2 bash -c "exec 3<>/dev/tcp/${WAIT_HOST:-127.0.0.1}/$1; head -c3 <&3 | grep -q 220" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# master.cf: the smtpd line given, then the services a default Postfix
# runs (virtual for Maildir delivery, tlsmgr for TLS; unused ones idle).
postfix_master_cf() { # "smtpd line"
  cat <<EOF
$1
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# CPU ticks (user + system, with reaped children) of one process so far.
ticks_of() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Ticks of a whole Postfix instance: master (with its reaped children) plus
# the children still alive. $1: the instance's queue directory.
postfix_ticks() {
  local pid t c
  pid=$(tr -d ' ' <"$1/pid/master.pid" 2>/dev/null)
  t=$(ticks_of "$pid")
  for c in $(pgrep -P "$pid" || true); do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}

# The median of the arguments (the mean of the middle two for an even
# count, not rounded: CPU figures are fractions of a millisecond).
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# The submission benches' port25 config (bench/submission-vs-postfix.sh,
# bench/index-callgrind.sh): one STARTTLS or implicit-TLS submission
# listener on 127.0.0.1:PORT, no limit that one busy login would reach,
# no HTTP listener (a port25 serve already running on :8025 would stop
# this one), the abuse desk on or off. With it on, the bench's one login
# sends thousands of messages a second from nothing: the jump the desk
# holds by default, and each message of a held login is remembered until
# the index has it (for the queue to hold). Measured is keeping the index
# and counting: the signal is raised, only tagged.
submission_bench_config() { # dir port tls(starttls|implicit) abuse(on|off) domain
  cat <<EOF
hostname = "bench-port25.localdomain"
data_dir = "$1/data"
[log]
level = "warn"
[http]
enabled = false
[mx]
domains = ["$5"]
[submission]
messages_per_hour = 0
messages_per_day = 0
recipients_per_hour = 0
recipients_per_day = 0
max_sessions_per_login = 100000
auth_in_flight_per_address = 100000
[[listener]]
name = "submissions"
address = "127.0.0.1:$2"
service = "submission"
tls = "$3"
[abuse]
enabled = $([ "$4" = off ] && echo false || echo true)
on_volume = "tag"
EOF
}
