# The scenarios of make check-xen, run by dom0's init (busybox sh).
#
# Each check prints one TAP line for the host: "XT ok N - what" or
# "XT not ok N - what"; "XT # ..." lines are diagnostics and
# "XT time NAME SECONDS" lines are measurements for the benchmark.
# XT_DAEMON is "ours" or "upstream" (Debian's C xenstored 4.17).

XT_N=0
XT_FAILED=0
LAUNCH=/usr/lib/xenstored/launch-xenstore	# from the .deb
UPSTREAM=/usr/lib/xen-4.17/bin/xenstored
CONTROL=/usr/lib/xen-4.17/bin/xenstore-control
PIDFILE=/run/xenstored.pid
RELEASES=/tmp/release-watch

diag() { echo "XT # $*"; }
ok() { XT_N=$((XT_N + 1)); echo "XT ok $XT_N - $*"; }
not_ok() { XT_N=$((XT_N + 1)); XT_FAILED=1; echo "XT not ok $XT_N - $*"; }
skip() { XT_N=$((XT_N + 1)); echo "XT ok $XT_N - $1 # SKIP $2"; }
# check WHAT CMD...: one TAP line for whether CMD succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
ours() { [ "$XT_DAEMON" = ours ]; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# Seconds (two decimals) since uptime $1.
since() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.2f", b - a }'; }

# The Xenstore commands over dom0's socket, never waiting forever.
xs_read() { timeout 20 xenstore-read "$@"; }
xs_write() { timeout 20 xenstore-write "$@"; }
xs_rm() { timeout 20 xenstore-rm "$@"; }
xs_exists() { timeout 20 xenstore-exists "$@" 2>/dev/null; }
xs_control() { timeout 60 "$CONTROL" "$@"; }
xs_is() { [ "$(xs_read "$1" 2>/dev/null)" = "$2" ]; }
xs_gone() { ! xs_exists "$1"; }

# wait_until SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
wait_until() {
	local limit=$1 start
	shift
	start=$(date +%s)
	until "$@"; do
		[ $(($(date +%s) - start)) -ge "$limit" ] && return 1
		usleep 200000
	done
}

# ---- the daemon

start_daemon() {
	if ours && [ "${XT_ONLY:-}" = boot ]; then
		: # measured: the installed settings as they are
	elif ours; then
		# The installed settings, plus a log and a trace for failures.
		cat >> /etc/default/xenstored <<-EOF
		XENSTORED_ARGS="--log-file /var/log/xen/xenstored.log --log-level info"
		XENSTORED_TRACE=1
		EOF
	else
		cat >> /etc/default/xenstored <<-EOF
		XENSTORED=$UPSTREAM
		XENSTORED_ARGS=
		EOF
	fi
	timeout 60 "$LAUNCH"
}

daemon_pid() { cat "$PIDFILE" 2>/dev/null || pidof xenstored; }
# The daemon's CPU seconds so far: the scheduler's nanoseconds on a CPU,
# or else user + system in ticks (USER_HZ is 100 on x86), too coarse for
# the quarter second it takes under run --icount.
daemon_cpu() {
	local pid
	pid=$(daemon_pid)
	if [ -r "/proc/$pid/schedstat" ]; then
		awk '{ printf "%.3f", $1 / 1e9 }' "/proc/$pid/schedstat"
	else
		awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$pid/stat"
	fi 2>/dev/null
}

# Where that CPU went, for a slow run: user and system seconds, page
# faults, read and write calls, context switches.
daemon_counters() {
	local pid
	pid=$(daemon_pid)
	diag "daemon counters: $(awk '{ printf "user %.2f s, system %.2f s, minor faults %d", $14 / 100, $15 / 100, $10 }' "/proc/$pid/stat")," \
		"$(awk '$1 == "syscr:" || $1 == "syscw:" { printf "%s %s, ", $1, $2 }' "/proc/$pid/io")" \
		"$(awk '/ctxt_switches/ { printf "%s %s ", $1, $2 }' "/proc/$pid/status")"
}

# Seconds dom0 takes for a fixed piece of work (a shell loop, then
# system calls), with no guest running: how fast the host runs QEMU at
# that moment, which the guests' boots may follow; the benchmark shows
# it beside them (bench/README.md, section 9).  The fastest of three:
# the first pays for TCG's translation of the code.
speed_reference() {
	local t0 i n best=
	for n in 1 2 3; do
		t0=$(uptime_s)
		i=0
		while [ $i -lt 40000 ]; do i=$((i + 1)); done
		dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null
		t0=$(since "$t0")
		best=$(awk -v a="$t0" -v b="${best:-$t0}" 'BEGIN { print (a < b ? a : b) }')
	done
	echo "$best"
}

release_watch_start() {
	xenstore-watch @releaseDomain > "$RELEASES" 2>&1 &
}
releases() { wc -l < "$RELEASES"; }
more_releases() { [ "$(releases)" -ge "$1" ]; }

# memreport's count of NAME ("domains", "connections"...), ours only.
mem_count() { xs_control memreport | awk -v k="$1:" '$1 == k { print $2 }'; }
mem_is() { [ "$(mem_count "$1")" = "$2" ]; }
ring_count() { xs_control memreport | sed -n 's/.* \([0-9]*\) rings).*/\1/p'; }

# ---- guests

# new_guest NAME [vif]: its xl configuration.
guest_config() {
	cat > "/xt/$1.cfg" <<-EOF
	type = "pv"
	name = "$1"
	memory = 128
	kernel = "/xt/vmlinux"
	ramdisk = "/xt/domU.cpio.gz"
	extra = "console=hvc0 rdinit=/init quiet"
	on_poweroff = "destroy"
	on_crash = "destroy"
	EOF
	if [ "${2:-}" = vif ]; then
		echo "vif = ['script=vif-test,mac=00:16:3e:00:00:01']" >> "/xt/$1.cfg"
	fi
}

domid_of() { xl domid "$1" 2>/dev/null; }
home() { echo "/local/domain/$1"; }
guest_ready() { xs_is "$(home "$1")/data/ready" 1; }

# Ping-pong through a watch the guest registers: dom0 writes data/ping,
# the guest's watch fires and it echoes the value into data/pong.
start_ping() { xs_write "$(home "$1")/data/cmd" watch; }
finish_ping() {
	local h
	h=$(home "$1")
	wait_until 60 xs_is "$h/data/watching" 1 || return 1
	xs_write "$h/data/ping" "ping-$1-$2" || return 1
	wait_until 60 xs_is "$h/data/pong" "ping-$1-$2"
}

# ---- scenario a: dom0

scenario_dom0() {
	t0=$(uptime_s)
	check "a: the daemon starts through launch-xenstore" start_daemon
	diag "daemon pid $(daemon_pid), up in $(since "$t0") s"
	if ours; then
		check "a: the daemon runs from its Debian package's files" \
			sh -c '[ "$(readlink /proc/'"$(daemon_pid)"'/exe)" = /usr/lib/xenstored/xenstored ]'
	fi
	check "a: socket client writes and reads" \
		sh -c 'timeout 20 xenstore-write /xt/a socket && [ "$(timeout 20 xenstore-read /xt/a)" = socket ]'
	# dom0's kernel reaches the daemon through xsd_kva: its xenbus device.
	check "a: dom0's kernel xenbus (xsd_kva) writes, the socket reads" \
		sh -c 'XENSTORED_PATH=/dev/xen/xenbus timeout 20 xenstore-write /xt/k kernel &&
			[ "$(timeout 20 xenstore-read /xt/k)" = kernel ]'
	XENSTORED_PATH=/dev/xen/xenbus timeout 30 xenstore-watch -n 2 /xt/kw > /tmp/kw 2>&1 &
	kwpid=$!
	wait_until 20 test -s /tmp/kw
	xs_write /xt/kw fired
	check "a: a watch through dom0's kernel fires on a socket write" \
		sh -c "wait $kwpid 2>/dev/null; [ \$(wc -l < /tmp/kw) -ge 2 ]"
	xs_rm /xt
	check "a: xen-init-dom0" timeout 60 xen-init-dom0
	check "a: dom0's name and domid" xs_is /local/domain/0/name Domain-0
	xenconsoled --log=guest --log-dir=/var/log/xen
	check "a: xenconsoled" wait_until 10 pidof xenconsoled
	release_watch_start
	wait_until 10 more_releases 1
}

# ---- scenario b: one guest with a network device

G1=
scenario_guest() {
	guest_config g1 vif
	t0=$(uptime_s)
	if ! timeout 120 xl create /xt/g1.cfg > /tmp/g1.create 2>&1; then
		not_ok "b: xl create of a PV guest with a vif"
		sed 's/^/XT # /' /tmp/g1.create
		return 1
	fi
	ok "b: xl create of a PV guest with a vif"
	G1=$(domid_of g1)
	h=$(home "$G1")
	if wait_until 150 guest_ready "$G1"; then
		ok "b: the guest's init runs and writes under its home"
		echo "XT time boot $(since "$t0")"
	else
		not_ok "b: the guest's init runs and writes under its home"
		return 1
	fi
	check "b: the guest reads its own domid ($G1)" xs_is "$h/data/seen-domid" "$G1"
	check "b: the guest reads its own name" xs_is "$h/data/seen-name" g1
	check "b: the guest owns what it wrote" \
		sh -c "timeout 20 xenstore-ls -p $h/data | grep -q '^seen-domid = \"$G1\" .*(n$G1)'"
	start_ping "$G1"
	check "b: a watch in the guest fires on dom0's write" finish_ping "$G1" 1
	b=/local/domain/0/backend/vif/$G1/0
	check "b: the vif backend reaches state 4" wait_until 60 xs_is "$b/state" 4
	check "b: the vif frontend reaches state 4" wait_until 60 xs_is "$h/device/vif/0/state" 4
	check "b: the guest sees eth0" xs_is "$h/data/eth0" present
}

# ---- scenarios d and e: a guest writing through a daemon restart

loop_start() {
	xs_write "$(home "$1")/data/cmd" loop &&
		wait_until 60 counter_above "$1" 2
}
counter() { xs_read "$(home "$1")/data/counter" 2>/dev/null || echo 0; }
counter_above() { [ "$(counter "$1")" -gt "$2" ]; }
# Stop the loop; its result is "<last counter> <failures>".
loop_stop() {
	local h
	h=$(home "$1")
	xs_rm "$h/data/loop-result" 2>/dev/null
	xs_write "$h/data/cmd" idle &&
		wait_until 60 xs_exists "$h/data/loop-result"
}
loop_checks() {
	local what=$1 domid=$2 before=$3 h
	h=$(home "$domid")
	check "$what: the guest's loop goes on (past $before)" \
		wait_until 90 counter_above "$domid" $((before + 3))
	if loop_stop "$domid"; then
		set -- $(xs_read "$h/data/loop-result")
		diag "$what: the guest wrote $1 values, $2 requests failed"
		check "$what: no request of the guest failed" [ "$2" = 0 ]
		check "$what: dom0 reads the guest's latest value" \
			xs_is "$h/data/counter" "$1"
	else
		not_ok "$what: the guest's loop stopped and reported"
	fi
}

scenario_crash() {
	if ! ours; then
		skip "d: kill -9 and restart with a guest writing" \
			"upstream loses its state"
		return
	fi
	[ -n "$G1" ] || { not_ok "d: a guest to write (scenario b failed)"; return; }
	check "d: the guest writes in a loop" loop_start "$G1"
	pid=$(daemon_pid)
	before=$(counter "$G1")
	kill -9 "$pid"
	diag "d: killed the daemon ($pid) at counter $before"
	wait_until 10 sh -c "! kill -0 $pid 2>/dev/null"
	t0=$(uptime_s)
	check "d: the daemon restarts through launch-xenstore" timeout 60 "$LAUNCH"
	diag "d: restarted in $(since "$t0") s (pid $(daemon_pid))"
	loop_checks d "$G1" "$before"
	# Socket clients of the old process are gone: start them again, as
	# their units would be.
	killall xenconsoled 2>/dev/null
	xenconsoled --log=guest --log-dir=/var/log/xen
	release_watch_start
	wait_until 10 more_releases 1
}

scenario_live_update() {
	[ -n "$G1" ] || { not_ok "e: a guest to write (scenario b failed)"; return; }
	check "e: the guest writes in a loop" loop_start "$G1"
	pid=$(daemon_pid)
	before=$(counter "$G1")
	bin=$(ours && echo /usr/lib/xenstored/xenstored || echo "$UPSTREAM")
	if xs_control live-update "$bin" > /tmp/lu 2>&1; then
		ok "e: xenstore-control live-update"
	else
		not_ok "e: xenstore-control live-update"
		sed 's/^/XT # /' /tmp/lu
	fi
	check "e: the same process serves on" [ "$(daemon_pid)" = "$pid" ]
	loop_checks e "$G1" "$before"
}

# ---- scenario c: destruction

scenario_destroy() {
	[ -n "$G1" ] || { not_ok "c: a guest to destroy (scenario b failed)"; return; }
	h=$(home "$G1")
	r=$(releases)
	check "c: xl destroy" timeout 60 xl destroy g1
	check "c: @releaseDomain fires" wait_until 30 more_releases $((r + 1))
	check "c: the guest's home is gone" wait_until 30 xs_gone "$h"
	check "c: its vif backend is gone" \
		wait_until 30 xs_gone "/local/domain/0/backend/vif/$G1"
	check "c: /libxl/$G1 is gone" wait_until 30 xs_gone "/libxl/$G1"
	memory_checks c
}

# The daemon holds nothing for guests that are gone.
memory_checks() {
	if ! ours; then
		skip "$1: the daemon forgot the guests" "memreport is ours"
		return
	fi
	check "$1: the daemon knows no guest (memreport)" wait_until 20 mem_is domains 1
	check "$1: the daemon serves no guest ring" [ "$(ring_count)" = 1 ]
	check "$1: CONTROL check" xs_control check
	diag "$1: $(xs_control memreport | tr '\n' ';')"
}

# ---- scenario f: a storm of guests created at once

STORM="s1 s2 s3 s4"
scenario_storm() {
	for g in $STORM; do guest_config "$g"; done
	t0=$(uptime_s)
	pids=
	for g in $STORM; do
		{
			timeout 240 xl create "/xt/$g.cfg" > "/tmp/$g.create" 2>&1
			echo $? "$(since "$t0")" > "/tmp/$g.created"
		} &
		pids="$pids $!"
	done
	failed=0
	wait $pids
	ids=
	for g in $STORM; do
		read -r status took < "/tmp/$g.created"
		diag "f: xl create $g: status $status after $took s"
		id=$(domid_of "$g")
		if [ -z "$id" ] || [ "$status" != 0 ]; then
			failed=1
			sed "s/^/XT # $g: /" "/tmp/$g.create"
			continue
		fi
		ids="$ids $id"
	done
	check "f: 4 guests created at once" [ "$failed" = 0 ]
	up=1
	for id in $ids; do
		wait_until 240 guest_ready "$id" || up=0
		diag "f: guest $id up after $(since "$t0") s"
	done
	if [ "$up" = 1 ]; then
		ok "f: every guest's init runs"
		echo "XT time storm $(since "$t0")"
		# Who had the CPU meanwhile (xl's Time(s): each domain's CPU
		# seconds), for a storm in the slow mode (bench/README.md).
		if [ "${XT_ONLY:-}" = boot ]; then
			timeout 60 xl list 2>&1 | sed 's/^/XT # f: /'
		fi
	else
		not_ok "f: every guest's init runs"
	fi
	talk=1
	for id in $ids; do
		xs_is "$(home "$id")/data/seen-domid" "$id" || talk=0
		start_ping "$id"
	done
	# All at once: each guest's watch is registered, then every ping.
	for id in $ids; do
		wait_until 60 xs_is "$(home "$id")/data/watching" 1 || talk=0
	done
	for id in $ids; do finish_ping "$id" 2 || talk=0; done
	check "f: every guest reads its domid and answers a watch" [ "$talk" = 1 ]

	# c, continued: guests that power themselves off.
	r=$(releases)
	for id in $ids; do xs_write "$(home "$id")/data/cmd" halt; done
	gone=1
	for id in $ids; do
		wait_until 120 xs_gone "$(home "$id")" || gone=0
	done
	check "c: guests that power off leave no home behind" [ "$gone" = 1 ]
	n=$(echo $ids | wc -w)
	check "c: @releaseDomain fires for each" wait_until 30 more_releases $((r + n))
	check "c: xl lists no guest" sh -c '[ "$(xl list | wc -l)" = 2 ]'
	memory_checks c
}

# ---- failure reports

dump() {
	[ -r "$1" ] || return 0
	echo "XT # ---- $1 (last ${2:-200} lines)"
	tail -n "${2:-200}" "$1" | sed "s|^|XT file $(basename "$1"): |"
}

report_failure() {
	diag "xl list:"
	xl list 2>&1 | sed 's/^/XT # /'
	dump /var/log/xen/xenstored.log 300
	dump /var/log/xen/xenstored-trace.log 300
	for f in /var/log/xen/guest-*.log /var/log/xen/xl-*.log; do
		dump "$f" 60
	done
	timeout 20 xenstore-ls -f /local 2>&1 | tail -n 150 | sed 's/^/XT file store: /'
}

run_scenarios() {
	scenario_dom0
	if [ "${XT_ONLY:-}" = boot ]; then
		echo "XT time reference_before $(speed_reference)"
		scenario_guest
		timeout 60 xl destroy g1
		scenario_storm
		# What the daemon itself spent on all of it: the figure the
		# clocks above, dominated by TCG, blur.
		echo "XT time daemon_cpu $(daemon_cpu)"
		daemon_counters
		echo "XT time reference_after $(speed_reference)"
	else
		scenario_guest
		scenario_crash
		scenario_live_update
		scenario_destroy
		scenario_storm
	fi
	[ "$XT_FAILED" = 0 ] || report_failure
	echo "XT 1..$XT_N"
}
