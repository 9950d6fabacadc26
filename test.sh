#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine of this kind (as root).
#
#  1. installs the peers the tests use (swaks, curl, postfix, nftables, ...)
#     with apt-get, and aiosmtpd (an LMTP server), dkimpy, prometheus-client
#     (the /metrics test's parser) and the report's Python peers with pip;
#  2. cargo test --workspace: unit tests, smoke fuzzing of every parser,
#     and the integration tests that start the real binary.
#
# A test whose peer or kernel feature is missing fails and says which; none
# is skipped silently.
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (Postfix and network namespaces need it)" >&2; exit 1; }
bash .ci/install-deps
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore aiosmtpd
# dkimpy: the second DKIM implementation that verifies port25's signatures.
python3 -c 'import dkim' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore dkimpy
# report: mmdb-writer builds MaxMind test databases (also the abuse desk's new-country test, tests/it/abuse.rs); pyarrow reads the Parquet export
python3 -c 'import mmdb_writer, netaddr, pyarrow' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore mmdb-writer netaddr pyarrow
# Prometheus' own text-format parser, for the /metrics test
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore prometheus-client
cargo test --workspace --locked --no-fail-fast "$@"
