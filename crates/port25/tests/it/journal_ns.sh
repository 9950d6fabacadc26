#!/usr/bin/env bash
# Runs port25 serve under a private journald, as systemd would, and prints
# what the journal holds (journalctl -o json). Run inside `unshare -m`: the
# tmpfs mounts hide the machine's own journal and sockets from the test.
#
# usage: unshare -m --propagation private bash journal_ns.sh PORT25 CONFIG PORT
set -euo pipefail
bin=$1 config=$2 port=$3
here=$(dirname "$0")
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/log /run/systemd/journal
mount -t tmpfs tmpfs /run/log
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
/lib/systemd/systemd-journald &
journald=$!
trap 'kill $journald 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.1; done
[ -S /run/systemd/journal/socket ] || { echo "journald did not start" >&2; exit 1; }
python3 "$here/journal_stream.py" port25 "$bin" serve --config "$config" &
server=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
swaks --server "127.0.0.1:$port" --from bob@remote.example --to alice@example.net --silent 2 >&2
kill -TERM $server
wait $server
journalctl --sync 2>/dev/null || sleep 0.5
journalctl -o json --no-pager
