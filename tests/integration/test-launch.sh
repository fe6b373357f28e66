#!/bin/bash
# The launch script and the service unit as built (init/launch-xenstore.in, init/xenstored.service.in):
# XENSTORED_MAX_OPEN_FDS ("unlimited", a number, too large, not a number) and XENSTORED_OOM_MEM_THRESHOLD
# become the daemon's open-files limits and oom_score_adj, in the background and under systemd; the
# unit's ordering before libvirt.  A stand-in daemon reports what it was given and exits.
#
# Raising a hard limit or lowering oom_score_adj below 0 needs CAP_SYS_RESOURCE, which a container may
# not grant even to root: the test asks the kernel first and expects, without it, the message that
# says the setting was refused.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "${XS_DAEMON:-}" = upstream-c ]; then
    skip_all "tests our own launch script"
fi
launch=$XS_BUILD/init/launch-xenstore
unit=$XS_BUILD/init/xenstored.service
[ -x "$launch" ] || bail_out "$launch is built (make tests)"

tmp=$(mktemp -d /tmp/xslaunch-XXXXXX)
cat >"$tmp/fake-xenstored" <<'EOF'
#!/bin/sh
# Stands in for xenstored: reports its limits, OOM score and arguments.
echo "nofile=$(ulimit -Sn)/$(ulimit -Hn) oom=$(cat /proc/self/oom_score_adj) args=$*" >"$FAKE_REPORT"
EOF
chmod +x "$tmp/fake-xenstored"

nr_open=$(cat /proc/sys/fs/nr_open)
hard=$(ulimit -Hn)
if (ulimit -n "$nr_open") 2>/dev/null; then can_raise=1; else can_raise=0; fi
if (echo -1 >/proc/self/oom_score_adj) 2>/dev/null; then can_lower=1; else can_lower=0; fi
note "fs.nr_open $nr_open, hard limit $hard; may raise it: $can_raise; may lower oom_score_adj: $can_lower"

# launch [VAR=VALUE...]: runs the launch script with the stand-in daemon and the settings given (and
# none from the caller's environment); sets RUN_* and REPORT (the daemon's line, or "not run").
# OOM_START=N first raises the script's oom_score_adj to N (always permitted).
launch() {
    rm -f "$tmp/report"
    run env -u NOTIFY_SOCKET -u XENSTORED_MAX_OPEN_FDS -u XENSTORED_OOM_MEM_THRESHOLD -u XENSTORED_ARGS \
        -u XENSTORED_TRACE -u XENSTORETYPE XENSTORED="$tmp/fake-xenstored" XENSTORED_PIDFILE="$tmp/pid" \
        FAKE_REPORT="$tmp/report" "$@" \
        sh -c 'echo "${OOM_START:-0}" >/proc/self/oom_score_adj && exec "$0"' "$launch"
    REPORT=$(cat "$tmp/report" 2>/dev/null || echo "not run")
}

# The limit "unlimited" becomes: the kernel's ceiling, or where that is refused, the hard limit kept.
if [ "$can_raise" -eq 1 ]; then top=$nr_open; else top=$hard; fi
refused=$'launch-xenstore: cannot set the open-files limit to '"$nr_open"' (not permitted): starting with '"$hard"$'\n'

launch XENSTORED_MAX_OPEN_FDS=unlimited
is "$RUN_RC" 0 "XENSTORED_MAX_OPEN_FDS=unlimited starts the daemon"
like "$REPORT" "^nofile=$top/$top " "unlimited: the daemon's limits are fs.nr_open (or the hard limit kept)"
if [ "$can_raise" -eq 1 ]; then
    is "$RUN_ERR" "" "unlimited: nothing on stderr"
else
    is "$RUN_ERR" "$refused" "unlimited, where raising is refused: says so"
fi

launch
is "$RUN_RC:$RUN_ERR" "0:" "no XENSTORED_MAX_OPEN_FDS starts the daemon, silently"
like "$REPORT" "^nofile=$top/$top " "the default is unlimited, as in Xen's script"

launch XENSTORED_MAX_OPEN_FDS=1000
is "$RUN_RC:$RUN_ERR" "0:" "XENSTORED_MAX_OPEN_FDS=1000 starts the daemon, silently"
like "$REPORT" "^nofile=1000/1000 " "a number becomes the soft and the hard limit"

launch XENSTORED_MAX_OPEN_FDS=$((nr_open + 1))
is "$RUN_RC" 0 "a limit above fs.nr_open starts the daemon"
like "$RUN_ERR" "^launch-xenstore: XENSTORED_MAX_OPEN_FDS=$((nr_open + 1)) is above the kernel's limit \(fs.nr_open\): using $nr_open"$'\n' \
    "a limit above fs.nr_open is cut to it, with a message"
like "$REPORT" "^nofile=$top/$top " "... and applied as unlimited"

launch XENSTORED_MAX_OPEN_FDS=lots
is "$RUN_RC" 0 "XENSTORED_MAX_OPEN_FDS=lots starts the daemon"
like "$RUN_ERR" '^launch-xenstore: XENSTORED_MAX_OPEN_FDS=lots is neither a number nor "unlimited": using "unlimited"'$'\n' \
    "a limit that is not a number is reported"
like "$REPORT" "^nofile=$top/$top " "... and taken as unlimited"

# Under systemd the script becomes the daemon: the same settings apply.
launch NOTIFY_SOCKET="$tmp/notify" XENSTORED_MAX_OPEN_FDS=900
is "$RUN_RC:$RUN_ERR" "0:" "under systemd the script runs the daemon"
like "$REPORT" "^nofile=900/900 oom=.* args=--no-fork --pid-file $tmp/pid$" \
    "under systemd the limit applies to the daemon run in the foreground"

# OOM score: minus ten times XENSTORED_OOM_MEM_THRESHOLD (percent of dom0's memory, default 50).
launch XENSTORED_OOM_MEM_THRESHOLD=0 OOM_START=200
is "$RUN_RC:$RUN_ERR" "0:" "XENSTORED_OOM_MEM_THRESHOLD=0 starts the daemon, silently"
like "$REPORT" " oom=0 " "a threshold of 0 gives oom_score_adj 0"
if [ "$can_lower" -eq 1 ]; then
    for t in 30:-300 100:-1000; do
        launch XENSTORED_OOM_MEM_THRESHOLD="${t%:*}"
        is "$RUN_RC:$RUN_ERR" "0:" "XENSTORED_OOM_MEM_THRESHOLD=${t%:*} starts the daemon, silently"
        like "$REPORT" " oom=${t#*:} " "a threshold of ${t%:*} gives oom_score_adj ${t#*:}"
    done
    launch
    like "$REPORT" " oom=-500 " "the default threshold, 50, gives oom_score_adj -500"
    launch XENSTORED_OOM_MEM_THRESHOLD=150
    like "$RUN_RC:$RUN_ERR" '^0:launch-xenstore: XENSTORED_OOM_MEM_THRESHOLD=150 is not a percentage from 0 to 100: using 50'$'\n' \
        "a threshold above 100 is reported"
    like "$REPORT" " oom=-500 " "... and the default used"
else
    launch XENSTORED_OOM_MEM_THRESHOLD=30 OOM_START=200
    is "$RUN_RC:$RUN_ERR" $'0:launch-xenstore: cannot set oom_score_adj to -300 (not permitted): keeping 200\n' \
        "a threshold of 30 asks for oom_score_adj -300 (refused here: reported)"
    launch OOM_START=200
    is "$RUN_RC:$RUN_ERR" "0:" "the default threshold, refused here, starts the daemon silently"
    launch XENSTORED_OOM_MEM_THRESHOLD=150 OOM_START=200
    like "$RUN_ERR" '^launch-xenstore: XENSTORED_OOM_MEM_THRESHOLD=150 is not a percentage from 0 to 100: using 50'$'\n''launch-xenstore: cannot set oom_score_adj to -500' \
        "a threshold above 100 is reported, and the default used"
fi

# The unit: ordered before libvirt, as upstream's; the limits are the script's alone.
text=$(cat "$unit" 2>/dev/null)
like "$text" $'\nBefore=libvirtd.service libvirt-guests.service\n' "the unit starts before libvirtd and libvirt-guests"
if [[ $text =~ $'\n'(LimitNOFILE|OOMScoreAdjust)= ]]; then
    fail "the unit leaves the limits to the launch script" "it sets ${BASH_REMATCH[1]}"
else
    pass "the unit leaves the limits to the launch script"
fi

rm -rf "$tmp"
done_testing
