#!/bin/bash
# Watches through the client tools of Xen:
#  * watch-example (built from watch-example.c by the Makefile into $XS_BUILD/tests/watch-example), the
#    watch example of the XenStore reference usage driven by a second handle and a child process, against
#    a fresh daemon: its TAP checks become this script's output;
#  * xenstore-watch (Debian's xenstore-utils): `xenstore-watch -n N PATH` prints N event paths, one a
#    line, and exits; its lines are checked for the initial event and for changes made meanwhile by
#    xenstore-write / xenstore-rm (xenstore-rm, and xenstore-write with several path/value pairs, run
#    in a transaction; xenstore-write of one pair does not).
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

client=$XS_BUILD/tests/watch-example
if [ ! -x "$client" ]; then
    bail_out "watch-example is built at $client (run make tests, or set XS_BUILD)"
fi

# ---------------------------------------------------------------------------------------------
# watch-example

start_daemon
out=$(mktemp)
timeout 20 "$client" >"$out" 2>&1
st=$?
tap_relay "watch-example runs all its planned checks" <"$out"
rm -f "$out"
case $st in
    0|1) ;;  # 1: some check failed, already reported
    124) fail "watch-example finishes within 20 s" "killed by timeout: the daemon may have stopped answering" ;;
    *) fail "watch-example exits normally" "exit status $st" ;;
esac

# ---------------------------------------------------------------------------------------------
# xenstore-watch

start_daemon
wdir=$(mktemp -d)

# watch_start ID N PATH: runs `xenstore-watch -n N PATH` in the background (bounded by 10 s) and waits
# until it has printed its first line, the initial event: from then on the watch is set.
declare -A wpid
watch_start() {
    local id=$1 i
    timeout 10 xenstore-watch -n "$2" "$3" >"$wdir/$id.out" 2>"$wdir/$id.err" </dev/null &
    wpid[$id]=$!
    for ((i = 0; i < 100; i++)); do
        [ -s "$wdir/$id.out" ] && return 0
        _alive "${wpid[$id]}" || break
        sleep 0.05
    done
    diag "xenstore-watch -n $2 $3 printed no initial event within 5 s"
    return 0  # watch_is reports it
}

# watch_is ID EXPECTED NAME: waits for watcher ID; it must exit 0 having printed exactly EXPECTED (the
# lines, with their newlines) and nothing on stderr.
watch_is() {
    local id=$1 want=$2 name=$3 rc got err
    wait "${wpid[$id]}"; rc=$?
    got=$(cat "$wdir/$id.out"; echo x); got=${got%x}
    err=$(cat "$wdir/$id.err")
    if [ "$rc" -eq 0 ] && [ "$got" == "$want" ] && [ -z "$err" ]; then
        pass "$name"
    else
        fail "$name" "exit status $rc$([ "$rc" -eq 124 ] && echo ' (timeout: too few events)')" \
            "     got: $(_show "$got")" "expected: $(_show "$want")" "stderr: $(_show "$err")"
    fi
}

prints "xenstore-watch -n 1 on a missing node prints its initial event" $'/xw\n' \
    timeout 10 xenstore-watch -n 1 /xw
prints "xenstore-watch -n 1 of a relative path prints it as given" $'rel/xw\n' \
    timeout 10 xenstore-watch -n 1 rel/xw
prints "xenstore-watch -n 1 @introduceDomain prints its initial event" $'@introduceDomain\n' \
    timeout 10 xenstore-watch -n 1 @introduceDomain
prints "xenstore-watch -n 1 @releaseDomain prints its initial event" $'@releaseDomain\n' \
    timeout 10 xenstore-watch -n 1 @releaseDomain

# writes, an identical rewrite, a removal
succeeds "xenstore-write /xw (before watching)" xenstore-write /xw ""
watch_start a 6 /xw
succeeds "xenstore-write /xw/a 1" xenstore-write /xw/a 1
succeeds "xenstore-write /xw 2" xenstore-write /xw 2
succeeds "xenstore-write /xw/a 1 (same value)" xenstore-write /xw/a 1
succeeds "xenstore-write /xwx 3 (not under /xw)" xenstore-write /xwx 3
succeeds "xenstore-rm /xw/a" xenstore-rm /xw/a
succeeds "xenstore-rm /xw/a again (missing: nothing fires)" xenstore-rm /xw/a
succeeds "xenstore-write /xw/b 4" xenstore-write /xw/b 4
watch_is a $'/xw\n/xw/a\n/xw\n/xw/a\n/xw/a\n/xw/b\n' \
    "xenstore-watch -n 6 /xw prints the initial event, then one line per change under /xw, in order"

# relative paths
succeeds "xenstore-write rel/w (before watching)" xenstore-write rel/w ""
watch_start r 3 rel/w
succeeds "xenstore-write rel/w/q 1" xenstore-write rel/w/q 1
succeeds "xenstore-write /local/domain/0/rel/w/z 2" xenstore-write /local/domain/0/rel/w/z 2
watch_is r $'rel/w\nrel/w/q\nrel/w/z\n' "xenstore-watch of a relative path prints relative event paths"

# two watchers of one node
succeeds "xenstore-write /two/x (before watching)" xenstore-write /two/x ""
watch_start t1 2 /two
watch_start t2 3 /two/x
succeeds "xenstore-write /two/x 1" xenstore-write /two/x 1
succeeds "xenstore-write /two/x/y 2" xenstore-write /two/x/y 2
watch_is t1 $'/two\n/two/x\n' "the first of two concurrent xenstore-watch gets the write"
watch_is t2 $'/two/x\n/two/x\n/two/x/y\n' "the second of two concurrent xenstore-watch gets both writes"

# removal of an ancestor: the watch's own path
succeeds "xenstore-write /rmw/c/d (before watching)" xenstore-write /rmw/c/d v
watch_start m 2 /rmw/c
succeeds "xenstore-rm /rmw" xenstore-rm /rmw
watch_is m $'/rmw/c\n/rmw/c\n' "removing an ancestor fires the watch with its own path"

# implicitly created parents fire nothing of their own, also when they are created in a transaction
watch_start i 4 /imp
succeeds "xenstore-write /imp/a/b 1 (/imp, /imp/a missing)" xenstore-write /imp/a/b 1
succeeds "xenstore-write /imp/c/d 2 /other 3 (one transaction; /imp/c missing)" \
    xenstore-write /imp/c/d 2 /other 3
succeeds "xenstore-write /imp/e 4" xenstore-write /imp/e 4
watch_is i $'/imp\n/imp/a/b\n/imp/c/d\n/imp/e\n' \
    "a write creating parents fires only for the written node, also in a transaction"

# (That ordinary changes fire no special watch is checked behind a barrier
# in test-watches.py: a sleep here would prove nothing on a loaded machine.)

# a bad path
run timeout 5 xenstore-watch '/a b'
if [ "$RUN_RC" -eq 1 ] && [ -z "$RUN_OUT" ] && [[ $RUN_ERR == *"Unable to add watch on /a b"* ]]; then
    pass "xenstore-watch of an invalid path fails"
else
    fail "xenstore-watch of an invalid path fails" "$(_run_diag xenstore-watch '/a b')"
fi

rm -rf "$wdir"
done_testing
