#!/bin/bash
# The Debian package (debian/, `make deb`): it builds, lintian finds no error, none of its files is
# owned by another package (xen-utils-common and xen-utils-4.17 own /usr/sbin/xenstored), and once
# extracted into a scratch root its daemon starts the way Debian's /etc/init.d/xen starts the one
# named by XENSTORED= in /etc/default/xen, and serves a client.
#
# XS_DEB=FILE tests that .deb instead of building one.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "${XS_DAEMON:-}" = upstream-c ]; then
    skip_all "packages our own daemon"
fi
if [[ " ${XS_MAKEFLAGS:-} " == *" SAN=1 "* ]]; then
    skip_all "the package is built and tested in the pass without sanitizers"
fi
missing=
for tool in dpkg-buildpackage:dpkg-dev dh:debhelper lintian:lintian start-stop-daemon:dpkg \
    choom:util-linux xenstore-read:xenstore-utils; do
    command -v "${tool%%:*}" >/dev/null || missing="$missing ${tool#*:}"
done
if [ -n "$missing" ]; then
    skip_all "the packaging tools are missing: install the Debian packages$missing"
fi

tmp=$(mktemp -d /tmp/xsdeb-XXXXXX)
if [ -n "${XS_DEB:-}" ]; then
    deb=$XS_DEB
    note "testing $deb"
else
    # At the lowest priority, as test-build's compiles.
    run nice -n 19 make --no-print-directory -C "$XS_REPO" deb
    ok "$RUN_RC" "make deb builds the package (lintian included)" \
        "$(_run_diag make deb | tail -n 40)"
    deb=$(find "$XS_REPO/build/deb" -maxdepth 1 -name 'xenstored_*.deb' 2>/dev/null | head -n 1)
fi
[ -f "$deb" ] || bail_out "a .deb to test (got '$deb')"

run lintian --fail-on error "$deb"
ok "$RUN_RC" "lintian reports no error" "$(_run_diag lintian)"

# Files (not directories) of the package, as absolute paths.
run dpkg-deb -c "$deb"
files=$(awk '$1 !~ /^d/ { print substr($6, 2) }' <<<"$RUN_OUT" | sort)
like "$files" $'(^|\n)/usr/lib/xenstored/xenstored\n' "the daemon is /usr/lib/xenstored/xenstored"

# No collision with Debian's Xen packages, nor with any other installed package.
xen_files=$(dpkg -L xen-utils-common xen-utils-4.17 xenstore-utils 2>/dev/null | sort -u)
[[ $xen_files == */usr/sbin/xenstored* ]] ||
    bail_out "dpkg -L lists xen-utils-common, xen-utils-4.17 and xenstore-utils (scripts/debian-packages)"
is "$(comm -12 <(echo "$files") <(echo "$xen_files"))" "" \
    "no file of the package is a file of xen-utils-common, xen-utils-4.17 or xenstore-utils"
owned=
for f in $files; do
    o=$(dpkg -S "$f" 2>/dev/null) && [[ $o != xenstored:* ]] && owned="$owned$o"$'\n'
done
is "$owned" "" "no other installed package owns a file of the package"
like "$files" $'(^|\n)/etc/default/xenstored\n' "its settings are its own file, /etc/default/xenstored"
if [[ $'\n'$files$'\n' == *$'\n/etc/default/xen\n'* ]]; then
    fail "the package leaves /etc/default/xen alone"
else
    pass "the package leaves /etc/default/xen alone"
fi

root=$tmp/root
run dpkg -x "$deb" "$root"
ok "$RUN_RC" "dpkg -x extracts the package" "$(_run_diag dpkg -x)"
daemon=$root/usr/lib/xenstored/xenstored
prints "the packaged daemon runs" $'xenstored 0.1.0\n' "$daemon" --version
like "$(cat "$root/usr/lib/xenstored/launch-xenstore")" 'XENSTORED=\$\{XENSTORED:-/usr/lib/xenstored/xenstored\}' \
    "the packaged launch script defaults to the packaged daemon"
like "$(cat "$root/lib/systemd/system/xenstored.service")" $'\nExecStart=/usr/lib/xenstored/launch-xenstore\n' \
    "the packaged unit runs the packaged launch script"

# The line the documentation gives an administrator names the packaged daemon.
for doc in docs/operations.md debian/README.Debian; do
    grep -q '^ *XENSTORED=/usr/lib/xenstored/xenstored$' "$XS_REPO/$doc"
    ok $? "$doc tells to set XENSTORED=/usr/lib/xenstored/xenstored in /etc/default/xen"
done

# Debian's start path, as /etc/init.d/xen's xenstored_start has it: XENSTORED_ROOTDIR exported, then
#   start-stop-daemon --start --quiet --pidfile /run/xenstore.pid --exec /usr/bin/choom -- \
#       -n -1000 "$XENSTORED" -- $XENSTORED_ARGS --pid-file /run/xenstore.pid
# then `xenstore-read -s /` until it answers (30 s).  Here /run is a scratch directory, which
# XENSTORED_RUNDIR points both the daemon and the clients to.
initd=/etc/init.d/xen
if [ -r "$initd" ]; then
    script=$(cat "$initd") gone=
    # shellcheck disable=SC2016 # the script's own text
    for piece in 'XENSTORED_PIDFILE="/run/xenstore.pid"' 'XENSTORED_DIR="/run/xenstored"' \
        'export XENSTORED_ROOTDIR="$XENSTORED_DIR"' \
        '--exec /usr/bin/choom -- -n -1000 "$try_xenstored" --' \
        '$XENSTORED_ARGS --pid-file "$XENSTORED_PIDFILE"' 'xenstore-read -s /'; do
        [[ $script == *"$piece"* ]] || gone="$gone"$'\n'"$piece"
    done
    is "$gone" "" "$initd starts XENSTORED as this test replicates it (else: update the test)"
else
    skip "$initd starts XENSTORED as this test replicates it" "no $initd (xen-utils-common)"
fi
if (echo -1000 >/proc/self/oom_score_adj) 2>/dev/null; then oom=-1000; else
    oom=0
    note "choom -n -1000 is not permitted here (no CAP_SYS_RESOURCE): using -n 0"
fi
rundir=$tmp/run/xenstored
pidfile=$tmp/run/xenstore.pid
mkdir -p "$rundir"
XENSTORED=$daemon
XENSTORED_ARGS=""
# shellcheck disable=SC2086 # split as the init script splits it
run env -u XENSTORED_PATH XENSTORED_ROOTDIR="$rundir" XENSTORED_RUNDIR="$rundir" \
    start-stop-daemon --start --quiet --pidfile "$pidfile" --exec /usr/bin/choom -- \
    -n "$oom" "$XENSTORED" -- $XENSTORED_ARGS --pid-file "$pidfile"
ok "$RUN_RC" "start-stop-daemon starts the packaged daemon as /etc/init.d/xen does" \
    "$(_run_diag start-stop-daemon)"
served=1
for ((i = 0; i < 30; i++)); do
    XENSTORED_RUNDIR=$rundir xenstore-read -s / >/dev/null 2>&1 && { served=0; break; }
    sleep 1
done
ok "$served" "xenstore-read -s / answers, as the init script waits for"
pid=$(cat "$pidfile" 2>/dev/null)
is "$(readlink "/proc/${pid:-0}/exe" 2>/dev/null)" "$daemon" "the pid file names the running packaged daemon"
is "$(cat "/proc/${pid:-0}/oom_score_adj" 2>/dev/null)" "$oom" "it runs with choom's OOM score"
export XENSTORED_RUNDIR=$rundir
succeeds "a client writes (as xen-init-dom0 does)" xenstore-write /local/domain/0/name Domain-0
prints "and reads back" $'Domain-0\n' xenstore-read /local/domain/0/name
[ -S "$rundir/socket" ]
ok $? "the socket is in the rundir, as /run/xenstored/socket would be"

# The init script run again knows only Debian's daemons as running: it starts this one again,
# which must refuse and leave the first serving (docs/operations.md says so).
# shellcheck disable=SC2086
run env -u XENSTORED_PATH XENSTORED_ROOTDIR="$rundir" XENSTORED_RUNDIR="$rundir" \
    start-stop-daemon --start --quiet --pidfile "$pidfile" --exec /usr/bin/choom -- \
    -n "$oom" "$XENSTORED" -- $XENSTORED_ARGS --pid-file "$pidfile"
like "$RUN_RC:$RUN_ERR" "^1:xenstored: error: .*(another daemon is already serving|is locked)" \
    "a second start the same way exits 1: a daemon is already serving"
is "$(cat "$pidfile" 2>/dev/null):$(xenstore-read /local/domain/0/name 2>&1)" "$pid:Domain-0" \
    "the first daemon goes on serving, its pid file intact"

if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
    for ((i = 0; i < 100; i++)); do _alive "$pid" || break; sleep 0.1; done
    _alive "$pid" && kill -KILL "$pid"
fi
rm -rf "$tmp"
done_testing
