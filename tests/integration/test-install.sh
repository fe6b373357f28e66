#!/bin/bash
# make install and make uninstall into temporary trees: the layout, the paths substituted into the
# systemd units and the launch script, `systemd-analyze verify` of the units, the man page rendered
# by man(1) without warnings, and settings in /etc never overwritten.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "${XS_DAEMON:-}" = upstream-c ]; then
    skip_all "installs our own daemon"
fi
# The build the test pass uses (B=..., SAN=...): already built, so make only copies.
read -r -a make_args <<<"${XS_MAKEFLAGS:-}"
tmp=$(mktemp -d /tmp/xsinst-XXXXXX)
dest=$tmp/dest
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
unitdir=${unitdir:-/lib/systemd/system}

xmake() { make --no-print-directory -C "$XS_REPO" "${make_args[@]}" "$@"; }
# The build's own init files (what other tests run, maybe meanwhile), as they are now.
build_init() { (cd "$XS_BUILD/init" && stat -c '%n %s %Y' -- * && cat -- *) 2>&1; }
build_init_before=$(build_init)

run xmake install DESTDIR="$dest" PREFIX=/usr
ok "$RUN_RC" "make install DESTDIR=... PREFIX=/usr succeeds" "$(_run_diag make install)"

# mode FILE: its permission bits, or "missing".
mode() { stat -c %a "$1" 2>/dev/null || echo missing; }
for f in usr/sbin/xenstored:755 usr/libexec/xenstored/launch-xenstore:755 \
    "${unitdir#/}/xenstored.service:644" "${unitdir#/}/xenstored.socket:644" \
    "${unitdir#/}/proc-xen.mount:644" usr/share/man/man8/xenstored.8:644 \
    etc/default/xenstored:644; do
    is "$(mode "$dest/${f%:*}")" "${f##*:}" "installs /${f%:*} with mode ${f##*:}"
done

unit=$dest$unitdir/xenstored.service
like "$(cat "$unit" 2>/dev/null)" $'\nExecStart=/usr/libexec/xenstored/launch-xenstore\n' \
    "the service runs the installed launch script"
like "$(cat "$unit" 2>/dev/null)" $'\nEnvironmentFile=-/etc/default/xenstored\n' \
    "the service reads /etc/default/xenstored"
like "$(cat "$dest$unitdir/xenstored.socket" 2>/dev/null)" $'\nListenStream=/run/xenstored/socket\n' \
    "the socket unit listens on /run/xenstored/socket"
like "$(cat "$dest/usr/libexec/xenstored/launch-xenstore" 2>/dev/null)" \
    'XENSTORED=\$\{XENSTORED:-/usr/sbin/xenstored\}' "the launch script defaults to the installed binary"
run grep -rlI '@[A-Z]*@' "$dest"
is "$RUN_OUT" "" "no @VARIABLE@ is left in the installed files"
prints "the installed binary runs" $'xenstored 0.1.0\n' "$dest/usr/sbin/xenstored" --version

# The man page renders cleanly.
run env LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$dest/usr/share/man/man8/xenstored.8"
if [ "$RUN_RC" -eq 0 ] && [ -z "$RUN_ERR" ] && [[ $RUN_OUT == *"XENSTORED(8)"* ]] &&
    [[ $RUN_OUT == *SYNOPSIS* ]] && [[ $RUN_OUT == *"EXIT STATUS"* ]]; then
    pass "man -l renders xenstored.8 without warnings"
else
    fail "man -l renders xenstored.8 without warnings" "$(_run_diag man -l)"
fi
succeeds "groff finds nothing to warn about in xenstored.8" \
    groff -man -ww -z -Tutf8 "$XS_REPO/man/xenstored.8"

# The units verify where the paths they name exist: install with the prefix inside the temp dir.
root=$tmp/root
run xmake install PREFIX="$root/usr" SYSCONFDIR="$root/etc" UNITDIR="$root/units"
ok "$RUN_RC" "make install into a private prefix succeeds" "$(_run_diag make install)"
run env MANPATH="$root/usr/share/man" systemd-analyze verify "$root/units/xenstored.service" \
    "$root/units/xenstored.socket" "$root/units/proc-xen.mount"
if [ "$RUN_RC" -eq 0 ] && [ -z "$RUN_OUT$RUN_ERR" ]; then
    pass "systemd-analyze verify accepts the units, silently"
else
    fail "systemd-analyze verify accepts the units, silently" "$(_run_diag systemd-analyze verify)"
fi

# Settings are the administrator's: never overwritten, removed only if unchanged.
echo 'XENSTORED_ARGS="--log-level info"' >>"$dest/etc/default/xenstored"
changed=$(cat "$dest/etc/default/xenstored")
run xmake install DESTDIR="$dest" PREFIX=/usr
is "$RUN_RC:$(cat "$dest/etc/default/xenstored")" "0:$changed" "a second install keeps changed settings"
run xmake uninstall DESTDIR="$dest" PREFIX=/usr
ok "$RUN_RC" "make uninstall succeeds" "$(_run_diag make uninstall)"
is "$(cd "$dest" && find . -type f | sort)" "./etc/default/xenstored" \
    "uninstall removes every file but the changed settings"
rm -f "$dest/etc/default/xenstored"
run xmake install DESTDIR="$dest" PREFIX=/usr
run xmake uninstall DESTDIR="$dest" PREFIX=/usr
is "$(cd "$dest" && find . -type f | sort)" "" "uninstall after an untouched install leaves no file"
is "$(build_init)" "$build_init_before" \
    "installs with other paths leave the build's own init files as they were"

rm -rf "$tmp"
done_testing
