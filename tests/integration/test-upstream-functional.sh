#!/bin/bash
# Runs upstream's functional test of a running Xenstore daemon, test-xenstore (Debian package
# xen-utils-4.17), against a fresh daemon: each of its tests is one check.
#
# test-xenstore works below the relative path xenstore-test/<pid> (so /local/domain/0/... for a
# socket client). For each test and iteration it removes and re-creates that node, sets the test up,
# times it, and verifies the result; on success it prints "<name padded to 10>: ..." and exits 0,
# on failure "<name>: failed (ret = <errno>, stage <stage>)" and exits 3.
#
# XS_TEST_TRANSACTIONS=0 skips the transaction tests ("ta ...").
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

TEST_XENSTORE=${TEST_XENSTORE:-/usr/lib/xen-4.17/bin/test-xenstore}
ITERATIONS=5
PLAIN_TESTS=("read 1" "read 2000" "write 1" "write 2000" "dir" "rm node" "rm dir")
TRANSACTION_TESTS=("ta empty" "ta empty x" "ta rmw" "ta rmw x" "ta err")
TX_SKIP="XS_TEST_TRANSACTIONS=0"

[ -x "$TEST_XENSTORE" ] || bail_out "$TEST_XENSTORE is installed (Debian package xen-utils-4.17)"

# run_upstream_test NAME: one test, ITERATIONS times, must report its average time and succeed.
# (test-xenstore silently succeeds on an unknown test name, hence the exact check of its output.)
run_upstream_test() {
    local name=$1 padded
    padded=$(printf '%-10s' "$name")
    run timeout 20 "$TEST_XENSTORE" -i "$ITERATIONS" -t "$name"
    if [ "$RUN_RC" -eq 0 ] && [ -z "$RUN_ERR" ] &&
        [[ $RUN_OUT =~ ^"$padded: avg: "[0-9]+" ns ("[0-9]+" ns .. "[0-9]+" ns)"$'\n'$ ]]; then
        pass "test-xenstore: $name ($ITERATIONS iterations)"
    else
        local hint="" ret
        if [ "$RUN_RC" -eq 124 ]; then
            hint="killed after 20 s: the daemon may have stopped answering"
        elif [[ $RUN_OUT =~ ret\ =\ ([0-9]+) ]]; then
            ret=${BASH_REMATCH[1]}
            hint="ret = $ret is errno $(perl -MPOSIX -e 'print "$ARGV[0] (", strerror($ARGV[0]), ")"' "$ret")"
        fi
        fail "test-xenstore: $name ($ITERATIONS iterations)" \
            "$(_run_diag "$TEST_XENSTORE" -i "$ITERATIONS" -t "$name")" \
            "expected: exit 0 and one line \"$padded: avg: <n> ns (<n> ns .. <n> ns)\"" ${hint:+"$hint"}
    fi
}

start_daemon

# The tool's own list: a test added or renamed upstream must be noticed here.
run "$TEST_XENSTORE" -l
is "$RUN_RC:$(sed -e 's/ *:.*//' <<<"$RUN_OUT")" \
    "0:$(printf '%s\n' "${PLAIN_TESTS[@]}" "${TRANSACTION_TESTS[@]}")" \
    "test-xenstore -l lists exactly the tests this script knows"

for t in "${PLAIN_TESTS[@]}"; do
    run_upstream_test "$t"
done

for t in "${TRANSACTION_TESTS[@]}"; do
    if [ "${XS_TEST_TRANSACTIONS:-1}" = 1 ]; then
        run_upstream_test "$t"
    else
        skip "test-xenstore: $t ($ITERATIONS iterations)" "$TX_SKIP"
    fi
done

if [ "${XS_TEST_TRANSACTIONS:-1}" = 1 ]; then
    # All twelve tests in one process, then its clean-up (which removes xenstore-test in a transaction).
    run timeout 20 "$TEST_XENSTORE"
    n=$(grep -cE '^[a-z0-9 ]{10}: [0-9]+ ns$' <<<"$RUN_OUT")
    if [ "$RUN_RC" -eq 0 ] && [ -z "$RUN_ERR" ] && [ "$n" -eq 12 ] &&
        [ "$(wc -l <<<"${RUN_OUT%$'\n'}")" -eq 12 ]; then
        pass "test-xenstore: all 12 tests in one run"
    else
        fail "test-xenstore: all 12 tests in one run" "$(_run_diag "$TEST_XENSTORE")"
    fi
    # Random tests for 3 seconds (prints nothing unless a test fails).
    succeeds "test-xenstore: random tests for 3 s" timeout 20 "$TEST_XENSTORE" -r 3
    fails_with "test-xenstore's clean-up removed its work directory" 1 \
        $'xenstore-read: couldn\'t read path /local/domain/0/xenstore-test\n' \
        xenstore-read /local/domain/0/xenstore-test
else
    skip "test-xenstore: all 12 tests in one run" "$TX_SKIP"
    skip "test-xenstore: random tests for 3 s" "$TX_SKIP"
    # Without transactions its clean-up stops before removing xenstore-test itself; every per-run
    # node below it must be gone all the same (an empty xenstore-test, or none at all).
    run xenstore-ls /local/domain/0/xenstore-test
    if { [ "$RUN_RC" -eq 0 ] && [ -z "$RUN_OUT$RUN_ERR" ]; } || { [ "$RUN_RC" -eq 1 ] && [ -z "$RUN_OUT" ] &&
        [ "$RUN_ERR" = $'xenstore-ls: xs_directory (/local/domain/0/xenstore-test): No such file or directory\n' ]; }; then
        pass "test-xenstore left no per-run node below xenstore-test"
    else
        fail "test-xenstore left no per-run node below xenstore-test" \
            "$(_run_diag xenstore-ls /local/domain/0/xenstore-test)" "expected: no output, or ENOENT"
    fi
fi

prints "the daemon still answers after test-xenstore" $'\n' xenstore-read /tool/xenstored
done_testing
