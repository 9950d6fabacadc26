#!/usr/bin/env bash
# The abuse desk's memory is bounded by the number of logins, not of
# messages (issue 19): desk_memory (crates/abuse/examples) sends MESSAGES
# messages through the desk's API (login, submission, the index records of
# the session, a tick every 10,000) from LOGINS logins, printing its
# resident memory every tenth of the way; once with few logins, once with
# ten times as many. RSS flat along the messages and growing with the
# logins is the claim.
#
# Usage: bench/abuse-memory.sh
# Env:   MESSAGES=1000000 FEW=1000 MANY=10000
#        BIN=target/release/examples/desk_memory (built if missing)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
MESSAGES=${MESSAGES:-1000000}
FEW=${FEW:-1000}
MANY=${MANY:-10000}
BIN=${BIN:-$ROOT/target/release/examples/desk_memory}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p port25-abuse --example desk_memory)
WORK=$(mktemp -d /var/tmp/port25-abuse-memory.XXXX)
trap 'rm -rf "$WORK"' EXIT
for logins in "$FEW" "$MANY"; do
  "$BIN" "$WORK/$logins" "$logins" "$MESSAGES" || die "desk_memory failed"
  echo "index $(du -sh "$WORK/$logins/abuse" | cut -f1)"
  rm -rf "${WORK:?}/$logins"
done
