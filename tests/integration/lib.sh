#!/bin/bash
# Helpers sourced by the integration test scripts (tests/integration/test-*.sh).
#
# Daemon control (see start_daemon): each start uses a fresh temporary directory and exports
# XENSTORED_PATH, so libxenstore and the xenstore-* commands talk to that daemon only.
#   XS_BUILD   build directory (default <repo>/build)
#   XS_DAEMON  daemon binary (default $XS_BUILD/xenstored); "upstream-c" starts Debian's upstream C
#              daemon through shared/anchors/start-upstream, to check the tests themselves.
#
# TAP reporting: checks print "ok N - name" / "not ok N - name" on stdout, with "# " diagnostics on
# stderr for failures. Call plan N first, or done_testing at the end. The script exits 1 if any check
# failed (or if the number of checks does not match the plan); a failing script also prints the
# daemon's log as diagnostics.

set -u

XS_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
XS_BUILD=${XS_BUILD:-$XS_REPO/build}
XS_DAEMON=${XS_DAEMON:-$XS_BUILD/xenstored}
XS_UPSTREAM_START=${XS_UPSTREAM_START:-$XS_REPO/../shared/anchors/start-upstream}
export XS_REPO XS_BUILD XS_DAEMON

_tap_count=0      # checks reported so far
_tap_failed=0     # of which failed
_tap_plan=        # planned count, if plan was called
_tap_finished=0

XS_DIR=           # temporary directory of the running daemon ("" when none)
XS_PID=           # its pid
XS_UPSTREAM=0     # 1 when the running daemon is upstream's (not our child)
_xs_log_shown=0
_xs_failed_at_start=0

# ---------------------------------------------------------------------------------------------
# TAP

plan() { _tap_plan=$1; echo "1..$1"; }

# diag LINE...: failure diagnostics, "# "-prefixed, on stderr (as Test::More does).
diag() {
    local line l
    for line in "$@"; do
        while IFS= read -r l || [ -n "$l" ]; do printf '# %s\n' "$l"; done <<<"$line" >&2
    done
}

# note LINE...: informational "# " lines on stdout.
note() {
    local line l
    for line in "$@"; do
        while IFS= read -r l || [ -n "$l" ]; do printf '# %s\n' "$l"; done <<<"$line"
    done
}

pass() { _tap_count=$((_tap_count + 1)); echo "ok $_tap_count - $1"; }

# fail NAME [DIAG...]
fail() {
    _tap_count=$((_tap_count + 1)); _tap_failed=$((_tap_failed + 1))
    echo "not ok $_tap_count - $1"
    shift
    [ $# -gt 0 ] && diag "$@"
    return 0
}

# skip NAME REASON: a skipped check (counts as passed).
skip() { _tap_count=$((_tap_count + 1)); echo "ok $_tap_count - $1 # SKIP $2"; }

# ok STATUS NAME [DIAG...]: passes when STATUS is 0.
ok() {
    local st=$1 name=$2; shift 2
    if [ "$st" -eq 0 ]; then pass "$name"; else fail "$name" "$@"; fi
}

# _show VALUE: a value quoted so that invisible characters (newlines, NULs gone, trailing blanks) show.
_show() { printf '%q' "$1"; }

# is GOT EXPECTED NAME: exact string comparison.
is() {
    if [ "$1" == "$2" ]; then pass "$3"
    else fail "$3" "     got: $(_show "$1")" "expected: $(_show "$2")"; fi
}

# like GOT REGEX NAME: extended regular expression match.
like() {
    if [[ $1 =~ $2 ]]; then pass "$3"
    else fail "$3" "     got: $(_show "$1")" "expected to match: $2"; fi
}

# run CMD...: runs CMD with stdin from /dev/null; sets RUN_OUT and RUN_ERR (exact bytes, trailing
# newlines kept; NUL bytes cannot be held in a shell variable and are dropped) and RUN_RC.
run() {
    local o e
    o=$(mktemp) e=$(mktemp)
    "$@" >"$o" 2>"$e" </dev/null
    RUN_RC=$?
    RUN_OUT=$(cat "$o"; echo x); RUN_OUT=${RUN_OUT%x}
    RUN_ERR=$(cat "$e"; echo x); RUN_ERR=${RUN_ERR%x}
    rm -f "$o" "$e"
}

# _run_diag: description of the last run, for diagnostics.
_run_diag() {
    printf '%s\n' "command: $(printf '%q ' "$@")" "exit status: $RUN_RC" \
        "stdout: $(_show "$RUN_OUT")" "stderr: $(_show "$RUN_ERR")"
}

# prints NAME EXPECTED_STDOUT CMD...: CMD exits 0, prints exactly EXPECTED_STDOUT (give trailing
# newlines explicitly, e.g. $'hello\n') and nothing on stderr.
prints() {
    local name=$1 want=$2; shift 2
    run "$@"
    if [ "$RUN_RC" -eq 0 ] && [ "$RUN_OUT" == "$want" ] && [ -z "$RUN_ERR" ]; then
        pass "$name"
    else
        fail "$name" "$(_run_diag "$@")" "expected: exit 0, stdout $(_show "$want"), empty stderr"
    fi
}

# succeeds NAME CMD...: CMD exits 0 and prints nothing at all.
succeeds() {
    local name=$1; shift
    prints "$name" "" "$@"
}

# fails_with NAME STATUS EXPECTED_STDERR CMD...: CMD exits with STATUS, prints nothing on stdout and
# exactly EXPECTED_STDERR on stderr.
fails_with() {
    local name=$1 st=$2 want=$3; shift 3
    run "$@"
    if [ "$RUN_RC" -eq "$st" ] && [ -z "$RUN_OUT" ] && [ "$RUN_ERR" == "$want" ]; then
        pass "$name"
    else
        fail "$name" "$(_run_diag "$@")" "expected: exit $st, empty stdout, stderr $(_show "$want")"
    fi
}

# tap_relay NAME < TAP: reads a TAP stream (e.g. a C test program's output), reports each of its checks
# as one of ours (renumbered), passes comments through (to stderr after a failing check, as
# diagnostics), and adds a failing check NAME if the stream printed no plan or its plan does not match
# the checks it reported. Must not run in a subshell (no pipe into it): use a file or < <(...).
tap_relay() {
    local name=$1 line seen=0 planned='' rest after_failure=0
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line =~ ^1\.\.([0-9]+) ]]; then
            planned=${BASH_REMATCH[1]}
        elif [[ $line =~ ^not\ ok\ *[0-9]*\ *-?\ *(.*)$ ]]; then
            rest=${BASH_REMATCH[1]}; seen=$((seen + 1)); after_failure=1
            fail "$rest"
        elif [[ $line =~ ^ok\ *[0-9]*\ *-?\ *(.*)$ ]]; then
            rest=${BASH_REMATCH[1]}; seen=$((seen + 1)); after_failure=0
            _tap_count=$((_tap_count + 1)); echo "ok $_tap_count - $rest"
        elif [[ $line =~ ^Bail\ out! ]]; then
            fail "$name: $line"
        elif [ "$after_failure" -eq 1 ]; then
            if [[ $line =~ ^# ]]; then printf '%s\n' "$line" >&2; else diag "$line"; fi
        else
            if [[ $line =~ ^# ]]; then printf '%s\n' "$line"; else note "$line"; fi
        fi
    done
    if [ -z "$planned" ]; then
        fail "$name" "no TAP plan line (1..N): the program stopped early ($seen checks seen)"
    elif [ "$planned" -ne "$seen" ]; then
        fail "$name" "planned $planned checks but reported $seen"
    fi
}

# done_testing: ends the script (prints the plan if none was given); exits 1 if anything failed.
done_testing() {
    [ "$_tap_finished" -eq 1 ] && return
    _tap_finished=1
    [ -n "$XS_PID" ] && stop_daemon
    _remove_dir
    if [ -z "$_tap_plan" ]; then
        echo "1..$_tap_count"
    elif [ "$_tap_plan" -ne "$_tap_count" ]; then
        diag "planned $_tap_plan checks but ran $_tap_count"
        _tap_failed=$((_tap_failed + 1))
    fi
    if [ "$_tap_failed" -gt 0 ]; then
        diag "$_tap_failed of $_tap_count checks failed"
        exit 1
    fi
    exit 0
}

# skip_all REASON: the whole script does not apply here: a TAP plan of no
# tests, skipped for REASON, and the end of the script.
skip_all() {
    _tap_finished=1
    echo "1..0 # SKIP $1"
    exit 0
}

# bail_out REASON: a failing check with REASON, then the end of the script.
bail_out() {
    fail "$1"
    done_testing
}

_on_exit() {
    local st=$?
    if [ "$_tap_finished" -eq 0 ]; then
        # The script ended without done_testing (set -u error, exit...): report and clean up.
        fail "test script ran to its end (it exited early with status $st)"
        [ -n "$XS_PID" ] && stop_daemon
        _remove_dir
        [ -z "$_tap_plan" ] && echo "1..$_tap_count"
        exit 1
    fi
}
trap _on_exit EXIT

# Interrupted (^C, prove killed, output pipe closed): stop the daemon and clean up, quietly.
_on_signal() {
    trap '' PIPE INT TERM HUP
    _tap_finished=1
    [ -n "$XS_PID" ] && kill -KILL "$XS_PID" 2>/dev/null
    XS_PID=
    [ -n "$XS_DIR" ] && rm -rf "$XS_DIR"
    exit 1
}
trap _on_signal PIPE INT TERM HUP

# ---------------------------------------------------------------------------------------------
# Daemon control

# show_daemon_log: the running (or just stopped) daemon's log as diagnostics, once per daemon.
show_daemon_log() {
    [ -n "$XS_DIR" ] && [ "$_xs_log_shown" -eq 0 ] || return 0
    _xs_log_shown=1
    if [ -s "$XS_DIR/log" ]; then
        diag "---- daemon log ($XS_DAEMON) ----"
        diag "$(tail -n 200 "$XS_DIR/log")"
        diag "---- end of daemon log ----"
    else
        diag "(the daemon's log is empty)"
    fi
}

# _alive PID: the process exists and is not a zombie (upstream's daemon is not our child, and
# nobody may reap it, so kill -0 alone is not enough).
_alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }; st=${st%% *}   # the state field follows "(comm) "
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# _status_text STATUS: "exit status N" or "death by signal N (NAME)" for a wait status.
_status_text() {
    if [ "$1" -gt 128 ]; then
        echo "death by signal $(($1 - 128)) (SIG$(kill -l $(($1 - 128)) 2>/dev/null))"
    else
        echo "exit status $1"
    fi
}

# start_daemon [EXTRA-ARGS...]: starts a daemon per the contract, in a fresh temporary directory, and
# exports XENSTORED_PATH. On failure it reports a failing check and ends the script.
start_daemon() {
    local i
    [ -n "$XS_PID" ] && stop_daemon
    XS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/xs-it.XXXXXX") || bail_out "cannot create a temporary directory"
    _xs_log_shown=0
    _xs_failed_at_start=$_tap_failed
    export XENSTORED_PATH=$XS_DIR/socket
    if [ "$XS_DAEMON" = upstream-c ]; then
        XS_UPSTREAM=1
        if ! XS_PID=$("$XS_UPSTREAM_START" c "$XS_DIR" "$@" 2>"$XS_DIR/start.err"); then
            XS_PID=
            fail "upstream daemon starts" "$(cat "$XS_DIR/start.err")"
            show_daemon_log
            done_testing
        fi
    else
        XS_UPSTREAM=0
        if [ ! -x "$XS_DAEMON" ]; then
            XS_PID=
            bail_out "daemon binary $XS_DAEMON exists (build it first, or set XS_DAEMON)"
        fi
        "$XS_DAEMON" -N --socket "$XS_DIR/socket" --pid-file "$XS_DIR/pid" "$@" >"$XS_DIR/log" 2>&1 &
        XS_PID=$!
    fi
    for ((i = 0; i < 100; i++)); do
        [ -S "$XS_DIR/socket" ] && return 0
        _alive "$XS_PID" || break
        sleep 0.1
    done
    if _alive "$XS_PID"; then
        fail "daemon creates its socket within 10 s" "socket: $XS_DIR/socket"
        stop_daemon
    else
        local how="status unknown"
        if [ "$XS_UPSTREAM" -eq 0 ]; then
            wait "$XS_PID" 2>/dev/null
            how=$(_status_text $?)
        fi
        XS_PID=
        fail "daemon starts and creates its socket" "it ended at start-up ($how) before $XS_DIR/socket appeared"
        show_daemon_log
    fi
    done_testing
}

# stop_daemon: SIGTERM, then wait up to 10 s (SIGKILL after that). Reports one check: the daemon
# exits cleanly (status 0, or death by our SIGTERM); upstream's death by SIGTERM is expected.
stop_daemon() {
    local pid=$XS_PID st i name="daemon exits cleanly on SIGTERM"
    [ -n "$pid" ] || return 0
    XS_PID=
    if [ "$XS_UPSTREAM" -eq 1 ]; then
        name="upstream daemon was still running and stops on SIGTERM"
        if ! _alive "$pid"; then
            fail "$name" "the daemon died during the test"
        else
            kill -TERM "$pid" 2>/dev/null
            for ((i = 0; i < 100; i++)); do _alive "$pid" || break; sleep 0.1; done
            if _alive "$pid"; then
                kill -KILL "$pid" 2>/dev/null
                fail "$name" "still running 10 s after SIGTERM: killed"
            else
                pass "$name"
            fi
        fi
    else
        if ! _alive "$pid"; then
            wait "$pid" 2>/dev/null; st=$?
            fail "daemon was still running at the end of the test" "it ended earlier: $(_status_text "$st")"
        else
            kill -TERM "$pid" 2>/dev/null
            for ((i = 0; i < 200; i++)); do _alive "$pid" || break; sleep 0.05; done
            if _alive "$pid"; then
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
                st=killed
            else
                wait "$pid" 2>/dev/null; st=$?
            fi
            if [ "$st" = killed ]; then
                fail "$name" "still running 10 s after SIGTERM: killed with SIGKILL"
            elif [ "$st" -eq 0 ] || [ "$st" -eq 143 ]; then
                pass "$name"
            else
                fail "$name" "$(_status_text "$st")"
            fi
        fi
    fi
    if [ "$_tap_failed" -gt "$_xs_failed_at_start" ]; then
        show_daemon_log
    fi
    _remove_dir
}

# _remove_dir: removes the daemon's temporary directory (kept if XS_KEEP_DIR is set, for debugging).
_remove_dir() {
    [ -n "$XS_DIR" ] || return 0
    if [ -n "${XS_KEEP_DIR:-}" ]; then note "kept the daemon's directory $XS_DIR"; else rm -rf "$XS_DIR"; fi
    XS_DIR=
    unset XENSTORED_PATH
}
