#!/bin/bash
# Runs libxs-client (built from libxs-client.c by the Makefile into $XS_BUILD/tests/libxs-client)
# against a fresh daemon: its TAP checks of libxenstore's xs_* calls become this script's output.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

client=$XS_BUILD/tests/libxs-client
if [ ! -x "$client" ]; then
    bail_out "libxs-client is built at $client (run make, or set XS_BUILD)"
fi

start_daemon
out=$(mktemp)
timeout 20 "$client" >"$out" 2>&1
st=$?
tap_relay "libxs-client runs all its planned checks" <"$out"
rm -f "$out"
case $st in
    0|1) ;;  # 1: some check failed, already reported
    124) fail "libxs-client finishes within 20 s" "killed by timeout: the daemon may have stopped answering" ;;
    *) fail "libxs-client exits normally" "exit status $st" ;;
esac
done_testing
