#!/bin/bash
# Runs libxs-transactions (built from libxs-transactions.c by the Makefile into
# $XS_BUILD/tests/libxs-transactions) against a fresh daemon: its TAP checks of transactions through
# libxenstore (commit, abort, EAGAIN, the retry loop, xs_directory in a transaction) become this
# script's output.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

client=$XS_BUILD/tests/libxs-transactions
if [ ! -x "$client" ]; then
    bail_out "libxs-transactions is built at $client (run make tests, or set XS_BUILD)"
fi

start_daemon
out=$(mktemp)
timeout 20 "$client" >"$out" 2>&1
st=$?
tap_relay "libxs-transactions runs all its planned checks" <"$out"
rm -f "$out"
case $st in
    0|1) ;;  # 1: some check failed, already reported
    124) fail "libxs-transactions finishes within 20 s" "killed by timeout: the daemon may have stopped answering" ;;
    *) fail "libxs-transactions exits normally" "exit status $st" ;;
esac
done_testing
