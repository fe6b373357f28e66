#!/bin/bash
# Drives a fresh daemon with Debian's xenstore-utils commands (xenstore-write, -read, -ls, -list,
# -exists, -rm, -chmod) and upstream's xenstore-control, checking their exact output and exit status.
#
# xenstore-list, -exists, -rm, -chmod, and -read/-write given several keys, wrap their work in a
# transaction. Setting XS_TEST_TRANSACTIONS=0 skips those checks (for a daemon without transactions).
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

XS_CONTROL=${XS_CONTROL:-/usr/lib/xen-4.17/bin/xenstore-control}
TX_SKIP="XS_TEST_TRANSACTIONS=0: these commands need transactions"

# lines LINE...: the lines, each ending in a newline (the exact stdout expected of a command).
lines() { [ $# -gt 0 ] && printf '%s\n' "$@"; }

# tx FUNCTION NAME ARGS...: runs a check that needs transactions, or skips it.
tx() {
    local name=$2
    if [ "${XS_TEST_TRANSACTIONS:-1}" = 1 ]; then "$@"; else skip "$name" "$TX_SKIP"; fi
}

for cmd in xenstore-write xenstore-read xenstore-ls xenstore-list xenstore-exists xenstore-rm xenstore-chmod; do
    command -v "$cmd" >/dev/null || bail_out "$cmd is installed (Debian package xenstore-utils)"
done

start_daemon

# ---- the fresh tree
prints "ls -p of the fresh tree shows /tool and /tool/xenstored with perms n0" "$(lines \
    'tool = ""  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)' \
    ' xenstored = ""  . . . . . . . . . . . . . . . . . . . . . .  (n0)')
" xenstore-ls -p
prints "ls of the fresh tree" "$(lines 'tool = ""' ' xenstored = ""')
" xenstore-ls
prints "ls -f of the fresh tree prints full paths" "$(lines '/tool = ""' '/tool/xenstored = ""')
" xenstore-ls -f
prints "read of /tool/xenstored prints its empty value" $'\n' xenstore-read /tool/xenstored
tx prints "list of / prints its single child tool" $'tool\n' xenstore-list /

# ---- write and read
succeeds "write of a new node below missing parents is silent and succeeds" xenstore-write /cli/vm/name hello
prints "read prints the written value" $'hello\n' xenstore-read /cli/vm/name
prints "read of a parent created by write prints an empty value" $'\n' xenstore-read /cli/vm
prints "read -p prefixes the value with the path" $'/cli/vm/name: hello\n' xenstore-read -p /cli/vm/name
succeeds "overwrite of a node succeeds" xenstore-write /cli/vm/name world
prints "read after an overwrite prints the new value" $'world\n' xenstore-read /cli/vm/name
succeeds "write of an escaped value with NUL, tab and backslash succeeds" xenstore-write /cli/bin 'a\x00b\tc\\d'
prints "read prints NUL, tab and backslash escaped" 'a\000b\tc\\d
' xenstore-read /cli/bin
raw=$(set -o pipefail; xenstore-read -R /cli/bin 2>&1 | od -An -c | tr -s ' ')
is "$?:$raw" '0: a \0 b \t c \ d' "read -R prints the raw bytes, NUL included"
succeeds "write of a value with quotes and spaces succeeds" xenstore-write /cli/q 'say "hi" twice'
prints "read prints quotes and spaces as they are" $'say "hi" twice\n' xenstore-read /cli/q
succeeds "write of an empty value succeeds" xenstore-write /cli/empty ''
prints "read of an empty value prints an empty line" $'\n' xenstore-read /cli/empty
succeeds "write of a relative path succeeds" xenstore-write rel/node rv
prints "a relative path of dom0 lives under /local/domain/0" $'rv\n' xenstore-read /local/domain/0/rel/node
prints "read of a relative path finds the node" $'rv\n' xenstore-read rel/node

prints "ls of a subtree shows values, indented by depth, in creation order" "$(lines \
    'vm = ""' \
    ' name = "world"' \
    'bin = "a\000b\tc\\d"' \
    'q = "say "hi" twice"' \
    'empty = ""')
" xenstore-ls /cli
prints "ls -f of the whole tree prints full paths in creation order" "$(lines \
    '/tool = ""' \
    '/tool/xenstored = ""' \
    '/cli = ""' \
    '/cli/vm = ""' \
    '/cli/vm/name = "world"' \
    '/cli/bin = "a\000b\tc\\d"' \
    '/cli/q = "say "hi" twice"' \
    '/cli/empty = ""' \
    '/local = ""' \
    '/local/domain = ""' \
    '/local/domain/0 = ""' \
    '/local/domain/0/rel = ""' \
    '/local/domain/0/rel/node = "rv"')
" xenstore-ls -f
prints "ls -p of a subtree shows the perms n0 inherited from /" "$(lines \
    'vm = ""  . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)' \
    ' name = "world"  . . . . . . . . . . . . . . . . . . . . . .  (n0)' \
    'bin = "a\000b\tc\\d" . . . . . . . . . . . . . . . . . . . .  (n0)' \
    'q = "say "hi" twice" . . . . . . . . . . . . . . . . . . . .  (n0)' \
    'empty = "" . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)')
" xenstore-ls -p /cli
long=$(printf 'v%.0s' $(seq 100))
succeeds "write of a 100-byte value succeeds" xenstore-write /cli2/long "$long"
prints "ls cuts a value longer than the line" "$(lines \
    "long = \"$(printf 'v%.0s' $(seq 68))\\...\"")
" xenstore-ls /cli2
prints "read prints a long value whole" "$long
" xenstore-read /cli2/long

# ---- read, write and ls failures
fails_with "read of a missing node fails" 1 $'xenstore-read: couldn\'t read path /cli/missing\n' \
    xenstore-read /cli/missing
fails_with "read below a missing parent fails" 1 $'xenstore-read: couldn\'t read path /nowhere/at/all\n' \
    xenstore-read /nowhere/at/all
fails_with "read of a path with a trailing slash fails" 1 $'xenstore-read: couldn\'t read path /cli/\n' \
    xenstore-read /cli/
fails_with "read of a path with a space fails" 1 $'xenstore-read: couldn\'t read path /cli/a b\n' \
    xenstore-read '/cli/a b'
fails_with "read of special node @releaseDomain fails" 1 $'xenstore-read: couldn\'t read path @releaseDomain\n' \
    xenstore-read @releaseDomain
fails_with "write of a path with a double slash fails" 1 $'xenstore-write: could not write path /cli//x\n' \
    xenstore-write /cli//x v
fails_with "write of a path with a '*' fails" 1 $'xenstore-write: could not write path /cli/x*\n' \
    xenstore-write '/cli/x*' v
fails_with "write of special node @introduceDomain fails" 1 $'xenstore-write: could not write path @introduceDomain\n' \
    xenstore-write @introduceDomain v
fails_with "ls of a missing node fails with ENOENT" 1 \
    $'xenstore-ls: xs_directory (/cli/missing): No such file or directory\n' xenstore-ls /cli/missing
fails_with "ls of special node @introduceDomain fails with EINVAL" 1 \
    $'xenstore-ls: xs_directory (@introduceDomain): Invalid argument\n' xenstore-ls @introduceDomain
prints "failed writes created nothing" "$(lines \
    '/cli/vm = ""' \
    '/cli/vm/name = "world"' \
    '/cli/bin = "a\000b\tc\\d"' \
    '/cli/q = "say "hi" twice"' \
    '/cli/empty = ""')
" xenstore-ls -f /cli

# ---- several keys in one command (one transaction)
tx succeeds "write of several pairs in one command succeeds" xenstore-write /multi/a 1 /multi/b 2 /multi/c 3
tx prints "read of several keys prints one value per line" "$(lines 1 2 3)
" xenstore-read /multi/a /multi/b /multi/c
tx prints "read -p of several keys prefixes each value with its path" "$(lines '/multi/c: 3' '/multi/a: 1')
" xenstore-read -p /multi/c /multi/a
tx fails_with "read of several keys fails when the first is missing" 1 \
    $'xenstore-read: couldn\'t read path /multi/missing\n' xenstore-read /multi/missing /multi/a

# ---- list
tx prints "list prints children in creation order" "$(lines a b c)
" xenstore-list /multi
tx succeeds "write of a new child named 0 succeeds" xenstore-write /multi/0 zero
tx succeeds "overwrite of the first child succeeds" xenstore-write /multi/a one
tx prints "a new child is listed last and an overwrite keeps the order" "$(lines a b c 0)
" xenstore-list /multi
tx prints "list -p prints full paths" "$(lines /multi/a /multi/b /multi/c /multi/0)
" xenstore-list -p /multi
tx prints "list of a leaf prints nothing" "" xenstore-list /multi/a
tx prints "list of / prints the top-level nodes in creation order" "$(lines tool cli local cli2 multi)
" xenstore-list /
tx prints "list of a relative path lists below /local/domain/0" "$(lines node)
" xenstore-list rel
tx fails_with "list of a missing node fails" 1 $'xenstore-list: could not list path /multi/missing\n' \
    xenstore-list /multi/missing
tx fails_with "list of special node @releaseDomain fails" 1 \
    $'xenstore-list: could not list path @releaseDomain\n' xenstore-list @releaseDomain

# ---- exists
tx succeeds "exists of a node succeeds silently" xenstore-exists /multi/a
tx succeeds "exists of a node with an empty value succeeds" xenstore-exists /cli/empty
tx succeeds "exists of / succeeds" xenstore-exists /
tx fails_with "exists of a missing node fails silently" 1 "" xenstore-exists /multi/missing
tx fails_with "exists below a missing parent fails silently" 1 "" xenstore-exists /nowhere/at/all
tx fails_with "exists of special node @introduceDomain fails silently" 1 "" xenstore-exists @introduceDomain

# ---- rm
tx succeeds "rm of a leaf succeeds silently" xenstore-rm /multi/b
tx fails_with "read of a removed node fails" 1 $'xenstore-read: couldn\'t read path /multi/b\n' \
    xenstore-read /multi/b
tx fails_with "exists of a removed node fails" 1 "" xenstore-exists /multi/b
tx prints "rm unlinks the node from its parent's list" "$(lines a c 0)
" xenstore-list /multi
tx succeeds "rm of a missing node whose parent exists succeeds" xenstore-rm /multi/b
tx fails_with "rm of a node whose parent is missing fails" 1 \
    $'xenstore-rm: could not remove path /nowhere/at\n' xenstore-rm /nowhere/at
tx fails_with "rm of / fails" 1 $'xenstore-rm: could not remove path /\n' xenstore-rm /
tx fails_with "rm of a path with a trailing slash fails" 1 \
    $'xenstore-rm: could not remove path /multi/\n' xenstore-rm /multi/
tx fails_with "rm of special node @releaseDomain fails" 1 \
    $'xenstore-rm: could not remove path @releaseDomain\n' xenstore-rm @releaseDomain
tx succeeds "rm of several paths in one command succeeds" xenstore-rm /multi/a /multi/0
tx prints "rm of several paths removed each of them" "$(lines c)
" xenstore-list /multi
tx succeeds "rm of a node with a subtree succeeds" xenstore-rm /cli
tx prints "rm removes the whole subtree and nothing else" "$(lines '/tool = ""' '/tool/xenstored = ""' \
    '/local = ""' '/local/domain = ""' '/local/domain/0 = ""' '/local/domain/0/rel = ""' \
    '/local/domain/0/rel/node = "rv"' '/cli2 = ""' "/cli2/long = \"$long\"" '/multi = ""' \
    '/multi/c = "3"')
" xenstore-ls -f
tx fails_with "read below a removed subtree fails" 1 $'xenstore-read: couldn\'t read path /cli/vm/name\n' \
    xenstore-read /cli/vm/name

# rm -t (tidy) also removes each parent left with no children and an empty value, up to /.
tx succeeds "rm -t setup: a deep leaf with a sibling higher up" xenstore-write /tidy/a/b/c/leaf v /tidy/keep k
tx succeeds "rm -t of a deep leaf succeeds" xenstore-rm -t /tidy/a/b/c/leaf
tx prints "rm -t removed the empty parents up to the one with another child" "$(lines '/tidy/keep = "k"')
" xenstore-ls -f /tidy
tx succeeds "rm -t setup: a leaf below a parent with a value" xenstore-write /tidy2 val /tidy2/x/leaf v
tx succeeds "rm -t below a parent with a value succeeds" xenstore-rm -t /tidy2/x/leaf
tx prints "rm -t stopped at the parent with a value" $'val\n' xenstore-read /tidy2
tx prints "rm -t removed the empty parent below it" "" xenstore-ls /tidy2
tx succeeds "rm -t of the only node below /local succeeds" xenstore-rm -t /local/domain/0/rel/node
tx prints "rm -t removed every emptied parent up to /" "$(lines tool cli2 multi tidy tidy2)
" xenstore-list /

# ---- chmod
tx succeeds "chmod setup: a small tree" xenstore-write /perm/top/d/e 1 /perm/top/d/f 2 /perm/top/g 3
tx succeeds "chmod of one node succeeds silently" xenstore-chmod /perm/top/d b5 r6
tx prints "ls -p shows the new perms on that node only" "$(lines \
    'top = "" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)' \
    ' d = ""  . . . . . . . . . . . . . . . . . . . . . . . . . .  (b5,r6)' \
    '  e = "1"  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)' \
    '  f = "2"  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)' \
    ' g = "3" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)')
" xenstore-ls -p /perm
tx succeeds "chmod -r succeeds" xenstore-chmod -r /perm/top n1 w2
tx prints "chmod -r set the perms on the node and its whole subtree" "$(lines \
    'top = "" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n1,w2)' \
    ' d = ""  . . . . . . . . . . . . . . . . . . . . . . . . . .  (n1,w2)' \
    '  e = "1"  . . . . . . . . . . . . . . . . . . . . . . . . .  (n1,w2)' \
    '  f = "2"  . . . . . . . . . . . . . . . . . . . . . . . . .  (n1,w2)' \
    ' g = "3" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n1,w2)')
" xenstore-ls -p /perm
tx succeeds "chmod -u succeeds" xenstore-chmod -u /perm/top/d/e b3
tx prints "chmod -u set the perms on the node and its parents only" "$(lines \
    'top = "" . . . . . . . . . . . . . . . . . . . . . . . . . .  (b3)' \
    ' d = ""  . . . . . . . . . . . . . . . . . . . . . . . . . .  (b3)' \
    '  e = "1"  . . . . . . . . . . . . . . . . . . . . . . . . .  (b3)' \
    '  f = "2"  . . . . . . . . . . . . . . . . . . . . . . . . .  (n1,w2)' \
    ' g = "3" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n1,w2)')
" xenstore-ls -p /perm
if [ "${XS_TEST_TRANSACTIONS:-1}" = 1 ]; then
    is "$(xenstore-ls -p / 2>&1 | grep -E '^(perm|tool) ')" "$(printf '%s\n' \
        'tool = ""  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)' \
        'perm = ""  . . . . . . . . . . . . . . . . . . . . . . . . .  (b3)')" \
        "chmod -u reached the top-level parent but left / and others alone"
else
    skip "chmod -u reached the top-level parent but left / and others alone" "$TX_SKIP"
fi
tx succeeds "chmod with four entries succeeds" xenstore-chmod /perm/top/g r0 b1 w2 n3
tx succeeds "write of a new child after chmod succeeds" xenstore-write /perm/top/d/new n
tx prints "perms keep their order, and a new node inherits its parent's perms" "$(lines \
    'd = "" . . . . . . . . . . . . . . . . . . . . . . . . . . .  (b3)' \
    ' e = "1" . . . . . . . . . . . . . . . . . . . . . . . . . .  (b3)' \
    ' f = "2" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n1,w2)' \
    ' new = "n" . . . . . . . . . . . . . . . . . . . . . . . . .  (b3)' \
    'g = "3"  . . . . . . . . . . . . . . . . . . . . . . . . . .  (r0,b1,w2,n3)')
" xenstore-ls -p /perm/top
tx fails_with "chmod of a missing node fails with ENOENT" 1 \
    $'xenstore-chmod: Error occurred setting permissions on \'/perm/nope\': No such file or directory\n' \
    xenstore-chmod /perm/nope n0
tx fails_with "chmod of a missing node did not create it" 1 "" xenstore-exists /perm/nope
tx succeeds "chmod of special node @releaseDomain succeeds" xenstore-chmod @releaseDomain n0 r5

# ---- xenstore-control
if [ ! -x "$XS_CONTROL" ]; then
    skip "xenstore-control checks" "$XS_CONTROL is not installed"
else
    run "$XS_CONTROL" help
    help_out=$RUN_OUT
    if [ "$RUN_RC" -eq 0 ] && [ -z "$RUN_ERR" ] &&
        [ "$(grep -cE $'^(check|print|help)\t' <<<"$RUN_OUT")" -eq 3 ]; then
        pass "control help lists check, print and help as <name><TAB><args>"
    else
        fail "control help lists check, print and help as <name><TAB><args>" "$(_run_diag "$XS_CONTROL" help)"
    fi
    marker=marker-$$-$RANDOM
    prints "control print answers OK" $'OK\n' "$XS_CONTROL" print "$marker"
    logdir=$XS_DIR
    for ((i = 0; i < 20; i++)); do grep -q "$marker" "$logdir/log" 2>/dev/null && break; sleep 0.1; done
    ok "$([ "$i" -lt 20 ]; echo $?)" "control print writes its string to the daemon's log" \
        "$marker not found in $logdir/log"
    before=$(xenstore-ls -f 2>&1)
    prints "control check answers OK" $'OK\n' "$XS_CONTROL" check
    is "$(xenstore-ls -f 2>&1)" "$before" "control check leaves a healthy store unchanged"
    fails_with "an unknown control command fails with status 3 and lists the valid ones" 3 \
        "Command not supported. Valid commands are:
$help_out" "$XS_CONTROL" no-such-command
    fails_with "control print without its argument fails with status 3" 3 \
        "Command not supported. Valid commands are:
$help_out" "$XS_CONTROL" print
fi

prints "the daemon still answers after all of the above" $'\n' xenstore-read /tool/xenstored
done_testing
