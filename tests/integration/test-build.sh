#!/bin/bash
# Building as a packager does, in a scratch copy of the tracked files: a plain `make` and
# ./configure never call apt; configure's --prefix, --sbindir, CPPFLAGS, CFLAGS and LDFLAGS reach
# the compiler and `make install DESTDIR=...`; no -Werror outside make check; configure records
# what the fuzz targets and the benchmark lack, and those goals name the Debian packages and stop;
# `make run` and `make check` install what is missing, without recommended packages.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "${XS_DAEMON:-}" = upstream-c ]; then
    skip_all "builds our own daemon"
fi
# It builds and tests a scratch copy of its own, nothing of the build under test: once, in the
# pass without sanitizers, is enough.
if [[ " ${XS_MAKEFLAGS:-} " == *" SAN=1 "* ]]; then
    skip_all "the scratch copy is built and tested in the pass without sanitizers"
fi
# make check in the scratch copy (below) must never come back here.
if [ -n "${XS_IN_BUILD_TEST:-}" ]; then
    skip_all "inside test-build.sh's own scratch copy"
fi
if ! git -C "$XS_REPO" rev-parse --git-dir >/dev/null 2>&1; then
    skip_all "copies the tracked files of a git checkout"
fi

tmp=$(mktemp -d /tmp/xsbuild-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src
mkdir -p "$src" "$tmp/bin"
# The work tree's version of every tracked file (a file deleted there is left out).
(cd "$XS_REPO" && git ls-files -z | xargs -0 cp --parents -t "$src" 2>/dev/null)

# apt-get and apt that only record being called: update succeeds, anything else fails.
for tool in apt-get apt; do
    cat >"$tmp/bin/$tool" <<EOF
#!/bin/sh
echo "$tool \$*" >>"$tmp/apt.log"
[ "\$1" = update ]
EOF
    chmod +x "$tmp/bin/$tool"
done
: >"$tmp/apt.log"
# dpkg-query as the real one, except that the package in \$XS_FAKE_MISSING is not installed.
cat >"$tmp/bin/dpkg-query" <<'EOF'
#!/bin/sh
for last; do :; done
if [ -n "${XS_FAKE_MISSING:-}" ] && [ "$last" = "$XS_FAKE_MISSING" ]; then
    printf not-installed
    exit 0
fi
exec /usr/bin/dpkg-query "$@"
EOF
chmod +x "$tmp/bin/dpkg-query"

# smake ARGS...: make in the scratch copy, with nothing of this test pass's make (B=, SAN=,
# WERROR=, which a make exports as variables too) or of the caller's flags leaking in.  At the
# lowest priority: the compiles must not crowd out the daemons of tests running beside this one.
smake() {
    (cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u B -u SAN -u WERROR -u CFLAGS -u CPPFLAGS -u LDFLAGS \
        XS_IN_BUILD_TEST=1 PATH="$tmp/bin:$PATH" nice -n 19 make --no-print-directory "$@")
}
sh_in_src() { (cd "$src" && env PATH="$tmp/bin:$PATH" XS_IN_BUILD_TEST=1 "$@"); }

# A plain `make` configures a fresh checkout itself (autoreconf, ./configure), without apt,
# even with a package of the build group missing.
export XS_FAKE_MISSING=uthash-dev
run smake config.mk
ok "$RUN_RC" "a plain make configures a fresh copy by itself" "$(_run_diag make config.mk)"
is "$(cat "$tmp/apt.log")" "" "configuring through make calls no apt"

# The packager's way.  CLANG and GNUPLOT name programs that do not exist: configure must still
# succeed and record what the fuzz targets and the benchmark lack.
run sh_in_src ./configure --prefix=/usr --sbindir=/usr/lib/xs-test/sbin \
    --with-systemdsystemunitdir=/usr/lib/systemd/system \
    CPPFLAGS=-DXS_MARKER_CPPFLAGS "CFLAGS=-O1 -g -DXS_MARKER_CFLAGS" \
    LDFLAGS=-L/xs-marker-ldflags CLANG=/nonexistent/clang GNUPLOT=/nonexistent/gnuplot
ok "$RUN_RC" "./configure succeeds without clang and gnuplot" "$(_run_diag ./configure)"
like "$RUN_OUT" $'make fuzz: clang libclang-rt-dev\n' "configure says what make fuzz lacks"
like "$RUN_OUT" $'make bench:[a-z0-9 -]* gnuplot-nox\n' "configure says what make bench lacks"
is "$(cat "$tmp/apt.log")" "" "./configure calls no apt"
# Each package configure names is one scripts/install-deps installs for that goal.
for goal in fuzz bench; do
    named=$(sed -n "s/^MISSING_${goal^^} = *//p" "$src/config.mk")
    listed=" $("$src/scripts/install-deps" --list "$goal") "
    stray=
    for pkg in $named; do [[ $listed == *" $pkg "* ]] || stray="$stray $pkg"; done
    is "$stray" "" "the packages configure names for make $goal ($named) are in its group"
done

run smake -j2
unset XS_FAKE_MISSING
ok "$RUN_RC" "make builds the daemon" "$(_run_diag make)"
is "$(cat "$tmp/apt.log")" "" "a plain make calls no apt"
compiles=$(grep -E '^[^ ]*(gcc|cc|clang)[^ ]* .* -c ' <<<"$RUN_OUT")
n=$(grep -c . <<<"$compiles")
[ "$n" -gt 0 ] || fail "make printed its compiles" "$RUN_OUT"
is "$(grep -c -- ' -DXS_MARKER_CPPFLAGS ' <<<"$compiles")" "$n" "CPPFLAGS reaches every compile ($n)"
is "$(grep -c -- ' -O1 -g -DXS_MARKER_CFLAGS' <<<"$compiles")" "$n" "CFLAGS reaches every compile"
like "$(grep -- '-o build/xenstored ' <<<"$RUN_OUT")" ' -L/xs-marker-ldflags ' \
    "LDFLAGS reaches the link of the daemon"
is "$(grep -c -- '-Werror' <<<"$RUN_OUT")" 0 "a packager's make has no -Werror"

# Installed where configure was told.
dest=$tmp/dest
run smake install DESTDIR="$dest"
ok "$RUN_RC" "make install DESTDIR=... succeeds" "$(_run_diag make install)"
is "$(cd "$dest" && find . -type f | sort)" "./etc/default/xenstored
./usr/lib/systemd/system/proc-xen.mount
./usr/lib/systemd/system/xenstored.service
./usr/lib/systemd/system/xenstored.socket
./usr/lib/xs-test/sbin/xenstored
./usr/libexec/xenstored/launch-xenstore
./usr/share/man/man8/xenstored.8" "the files go where --prefix, --sbindir and the unit dir say"
like "$(cat "$dest/usr/libexec/xenstored/launch-xenstore" 2>/dev/null)" \
    'XENSTORED=\$\{XENSTORED:-/usr/lib/xs-test/sbin/xenstored\}' \
    "the launch script names the daemon in --sbindir"
# PREFIX= on the command line moves what configure derived from the prefix, not --sbindir.
run smake install DESTDIR="$tmp/dest2" PREFIX=/opt/xs
ok "$RUN_RC" "make install PREFIX=/opt/xs succeeds" "$(_run_diag make install)"
if [ -x "$tmp/dest2/opt/xs/libexec/xenstored/launch-xenstore" ] &&
    [ -x "$tmp/dest2/usr/lib/xs-test/sbin/xenstored" ]; then
    pass "PREFIX= moves the prefix's directories and keeps an explicit --sbindir"
else
    fail "PREFIX= moves the prefix's directories and keeps an explicit --sbindir" \
        "$(cd "$tmp/dest2" && find . -type f | sort)"
fi

# Goals whose tools configure did not find name the package and build nothing.  (Should they
# not stop, they run briefly.)
export FUZZ_SECONDS=1 FUZZ_SMOKE_SECONDS=1 BENCH_SMOKE=1
for goal in fuzz fuzz-smoke; do
    run smake "$goal"
    if [ "$RUN_RC" -ne 0 ] && [[ $RUN_ERR == *"make $goal needs the Debian packages clang libclang-rt-dev: apt-get install -y --no-install-recommends clang libclang-rt-dev;"* ]] &&
        [ ! -e "$src/build-fuzz" ]; then
        pass "make $goal without clang names clang and libclang-rt-dev, and stops"
    else
        fail "make $goal without clang names clang and libclang-rt-dev, and stops" \
            "$(_run_diag make "$goal")"
    fi
done
run smake bench
if [ "$RUN_RC" -ne 0 ] && [[ $RUN_ERR == *"make bench needs the Debian packages"*" gnuplot-nox: apt-get install "* ]] &&
    [ ! -e "$src/build/bench" ]; then
    pass "make bench without gnuplot names gnuplot-nox, and stops"
else
    fail "make bench without gnuplot names gnuplot-nox, and stops" "$(_run_diag make bench)"
fi
# As config.mk would say on a machine without the check library.
run smake test-pass MISSING_TEST=" check"
if [ "$RUN_RC" -ne 0 ] && [[ $RUN_ERR == *"make test-pass needs the Debian packages check: apt-get install -y --no-install-recommends check;"* ]]; then
    pass "make test-pass without libcheck names the package check, and stops"
else
    fail "make test-pass without libcheck names the package check, and stops" \
        "$(_run_diag make test-pass)"
fi

# make check turns -Werror on (make -n still runs its sub-makes, which print their compiles;
# the first stops at fuzz-smoke, for want of clang).
run smake -n check
werror=$(grep -E ' -c -o build/daemon/main.o ' <<<"$RUN_OUT")
like "$werror" ' -Werror ' "make check compiles with -Werror"
is "$(cat "$tmp/apt.log")" "" "no goal so far called apt"

# The README's two commands install what is missing, never recommended packages.  A safety net
# should they not: include-graph fails at once, and the daemon cannot make its run directory.
printf '#!/bin/sh\nexit 1\n' >"$src/scripts/include-graph"
# installs GOAL PACKAGE [MAKE ARGS...]: with PACKAGE missing, make GOAL installs it without
# recommends as root (the fake apt-get fails, so it stops), or names that command otherwise.
installs() {
    local goal=$1 pkg=$2
    shift 2
    : >"$tmp/apt.log"
    XS_FAKE_MISSING=$pkg run smake "$goal" "$@"
    if [ "$(id -u)" -eq 0 ]; then
        is "$RUN_RC:$(cat "$tmp/apt.log")" "2:apt-get update
apt-get install -y --no-install-recommends $pkg" \
            "make $goal installs a missing package without recommends (and stops when that fails)"
    else
        like "$RUN_RC:$RUN_ERR" "^2:.*sudo apt-get install -y --no-install-recommends $pkg" \
            "make $goal names the command that installs a missing package, without recommends"
    fi
}
installs run python3-pyxs RUNDIR=/proc/xs-no-such-dir
installs check check

done_testing
