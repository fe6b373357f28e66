#!/bin/bash
# The benchmark, so it never rots: bench/run with BENCH_SMOKE=1 (tiny sizes, one short round,
# no upstream) runs every program of `make bench` against the daemon of this build, the no-op
# server and the guests of the Xen test double, each checking every reply; then bench/report
# turns the results into the report.  The figures are not judged, only that each program ran,
# said what it measured, and that the report has its sections and targets.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "${XS_DAEMON:-}" = upstream-c ]; then
    skip_all "runs our own benchmark"
fi
tmp=$(mktemp -d /tmp/xsbench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.txt
# What bench/run leaves on the tmpfs: nothing.
shm_before=$(ls /dev/shm /run 2>/dev/null | grep -c '^xs-bench' || true)

run env BENCH_SMOKE=1 BENCH_RESULTS="$results" BENCH_REPORT="$tmp/unused.md" \
    "$XS_REPO/bench/run" "$XS_BUILD"
ok "$RUN_RC" "bench/run with BENCH_SMOKE=1 succeeds" "$(_run_diag bench/run)"

# has NAME KEY=VALUE...: some results line NAME carries every KEY=VALUE given.
has() {
    local name=$1 line kv all
    shift
    while read -r line; do
        [ "${line%% *}" = "$name" ] || continue
        all=1
        for kv in "$@"; do
            case " $line " in *" $kv "*) ;; *) all=0 ;; esac
        done
        [ $all = 1 ] && return 0
    done <"$results"
    return 1
}
for w in read write directory mkdir-rm txn5 boot; do
    has load daemon=ours workload=$w clients=1
    ok $? "load measured $w with our daemon"
done
has load daemon=noop workload=read clients=1
ok $? "load measured the no-op server"
has load daemon=ours-nodb workload=write
ok $? "load measured our daemon without its database"
# The defaults' database is on the tmpfs and counted as memory.
grep -E '^load daemon=ours .* files_kb=[1-9][0-9]* ' "$results" >/dev/null
ok $? "ours' load lines count its database file"
# The store-size lines (the smoke's 2,000 nodes) measure each daemon at rest too.
bad=$(grep -E '^load daemon=(ours|upstream-c|oxenstored) .* nodes=2000 ' "$results" |
    grep -vE ' rest_rss_kb=[1-9][0-9]* rest_files_kb=[0-9]+ rest_kb=[1-9][0-9]* rest_wait_ms=(1[5-9]|[2-9])[0-9]{2,} ' || true)
is "$bad" "" "every store-size line gives the daemon's memory at rest, 1.5 s on at least"
has load daemon=ours nodes=2000
ok $? "ours has store-size lines"
bad=$(grep -E '^load daemon=(ours|ours-nodb|noop) ' "$results" | grep -v ' cpu_us=[0-9]' || true)
is "$bad" "" "every load line of a daemon with a pid has its CPU time per op"
# The host probe's counts, on every line of a load with one request in flight.
bad=$(grep -E '^load ' "$results" | grep -vE ' unsteady=[0-9]+ unsteady_kept=[0-9]+ waited_s=[0-9.]+ ' || true)
is "$bad" "" "every load line says how often and how long the host probe waited"
has watch_register daemon=ours repeats=1
ok $? "watch-register says how many registrations each figure is the median of"
grep -E '^watch_register daemon=ours .* nb_p99_ratio=[0-9.]+ repeats=1 ' "$results" >/dev/null
ok $? "watch-register gives the median per-registration p99 ratio"
grep -E '^watch_register daemon=ours .* ref_ms=[0-9.]*[1-9][0-9.]* cpu_per_ref=[0-9.]*[1-9][0-9.]* waited_s=[0-9.]+' "$results" >/dev/null
ok $? "watch-register gives the reference's CPU time and ours' CPU over it" \
    "$(grep '^watch_register ' "$results")"
# A positive figure: ([1-9]...|0.0...[1-9]...).
pos='([1-9][0-9]*\.[0-9]+|0\.[0-9]*[1-9][0-9]*)'
grep -qE "^watch_register daemon=ours .* cpu_s=$pos " "$results"
ok $? "watch-register gives our daemon's CPU time over the registration" \
    "$(grep '^watch_register ' "$results")"
# db-cost: both sides' CPU a WRITE, their difference (either sign: a
# noisy round may favour either side) and the compaction thread's.
grep -qE "^db_cost nodes=1000 batch=32 rounds=1 writes=20000 loop_ns_nodb=$pos loop_ns_db=$pos added_ns=-?[0-9.]+ added_min_ns=-?[0-9.]+ added_max_ns=-?[0-9.]+ thread_ns=[0-9.]+\$" "$results"
ok $? "db-cost gives the database's cost a WRITE in process" \
    "$(grep '^db_cost ' "$results")"
# wake-cost: the writer's CPU for each idle gap, every one positive.
if [ "$(nproc)" -ge 2 ]; then
    grep -qE "^wake_cost writes=20 gaps_us=2,5,10,20,50 cpu_us=$pos(,$pos){4}\$" "$results"
    ok $? "wake-cost gives the waker's CPU for each idle gap" "$(grep '^wake_cost ' "$results")"
fi
bad=$(grep -E '^durability_restart ' "$results" | grep -vE " cpu_ms=$pos " || true)
is "$bad" "" "every restart line gives the new daemon's CPU time to ready"
bad=$(grep -E '^durability_restart case=sig' "$results" |
    grep -vE " ref_ms=$pos cpu_per_ref=$pos( |\$)" || true)
is "$bad" "" "every restart with a database gives the reference's CPU time and the ratio"
# The files of other processes open on /dev/cpu_dma_latency (a PM QoS request still held).
dma_latency_holders() {
    for f in /proc/[0-9]*/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = /dev/cpu_dma_latency ] && echo "$f"
    done | grep -v "^/proc/$$/" || true
}
# Idle CPUs polled for the run where it may ask (root), and the request went with it.
# What idle CPUs can be made to do here: poll (root, and a cpuidle driver
# to obey the request), halt for want of a driver, or poll from boot.
want=off
driver=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || true)
if grep -qw 'idle=poll' /proc/cmdline; then want=boot
elif [ ! -w /dev/cpu_dma_latency ]; then want=off
elif [ -z "$driver" ] || [ "$driver" = none ]; then want=nodriver
else want=poll; fi
head -n 1 "$results" | grep -q " idle=$want\$"
ok $? "the results' header says idle CPUs were set to $want"
holders=$(dma_latency_holders)
is "$holders" "" "nothing holds /dev/cpu_dma_latency open after the run"
shm_after=$(ls /dev/shm /run 2>/dev/null | grep -c '^xs-bench' || true)
is "$shm_after" "$shm_before" "bench/run leaves nothing on the tmpfs"
has load daemon=ours workload=read mode=raw
ok $? "load measured pipelined reads"
has load daemon=ours workload=read idle=20
ok $? "load measured reads beside idle connections"
# ... and its twin without them, in the same rounds.
run_id=$(grep -E '^load daemon=ours workload=read .* idle=20 ' "$results" | head -n 1 |
    sed -n 's/.* run=\([0-9]*\).*/\1/p')
has load daemon=ours workload=read idle=0 "run=$run_id"
ok $? "the twin without idle connections took turns with it"
has load daemon=ours workload=write watches=10000
ok $? "load measured writes beside 10,000 watches"
has load daemon=ours workload=txn5 nodes=2000
ok $? "load measured transactions on a bigger store"
has guests path=ring domains=4
ok $? "guests measured a guest's ring beside idle guests"
has guests path=socket domains=4
ok $? "guests measured the socket beside idle guests"
for name in txn_inproc watch_latency conflict_total durability_writes durability_restart; do
    has $name
    ok $? "the results have $name"
done
# No figure is zero or missing where a rate is reported.
zero=$(grep -E '^(load|guests) ' "$results" | grep -E ' ops_per_s=(0|0\.0*)? ' || true)
is "$zero" "" "every load and guests line has a rate"

# The host probe, made to find every moment unsteady (a bound of a
# hundredth of the usual trip): load waits its budget before the first
# turn, then measures anyway, and says so.
"$XS_BUILD/bench/noop-server" "$tmp/noop.sock" >/dev/null 2>&1 &
noop_pid=$!
for _ in $(seq 100); do [ -S "$tmp/noop.sock" ] && break; sleep 0.05; done
run env BENCH_RESULTS="$tmp/steady.txt" BENCH_STEADY_FILE="$tmp/steady" BENCH_STEADY_WAIT_S=0.4 \
    "$XS_BUILD/bench/load" -r 2 -t 50 -g 0.01 -w read -c 1 "noop=$tmp/noop.sock@$noop_pid"
ok "$RUN_RC" "load runs with a host probe that finds the host unsteady" "$(_run_diag load)"
grep -E '^load daemon=noop .* rounds=2 .* unsteady=2 unsteady_kept=2 waited_s=0\.[4-9]' \
    "$tmp/steady.txt" >/dev/null
ok $? "load waited its budget, then measured both rounds on the unsteady host and counted them" \
    "$(cat "$tmp/steady.txt" 2>/dev/null)"
like "$RUN_OUT" "the host was unsteady" "load says the host was unsteady"
grep -qE '^[0-9.]+ [0-9.]+$' "$tmp/steady" 2>/dev/null
ok $? "load left its usual round trip and CPU probe's time for the next program" \
    "$(cat "$tmp/steady" 2>/dev/null)"

# The CPU half of the probe alone: wakeups within any bound, the CPU
# always "slower" than a hundredth of its usual time.
run env BENCH_RESULTS="$tmp/steady-cpu.txt" BENCH_STEADY_CPU=0.01 BENCH_STEADY_WAIT_S=0.4 \
    "$XS_BUILD/bench/load" -r 2 -t 50 -g 1000 -w read -c 1 "noop=$tmp/noop.sock@$noop_pid"
ok "$RUN_RC" "load runs with a CPU probe that finds the host slow" "$(_run_diag load)"
grep -E '^load daemon=noop .* rounds=2 .* unsteady=2 unsteady_kept=2 waited_s=0\.[4-9]' \
    "$tmp/steady-cpu.txt" >/dev/null
ok $? "a slow CPU alone makes load wait, as a slow wakeup does" \
    "$(cat "$tmp/steady-cpu.txt" 2>/dev/null)"
kill "$noop_pid" 2>/dev/null
wait "$noop_pid" 2>/dev/null

run "$XS_REPO/bench/report" "$results" "$tmp/report.md"
ok "$RUN_RC" "bench/report writes the report" "$(_run_diag bench/report)"
report=$(cat "$tmp/report.md" 2>/dev/null)
for section in "Targets" "Durability"; do
    like "$report" "$section" "the report has a $section section"
done
like "$report" "0.95" "the report states the single-client target"
like "$report" "ours --no-database" "the report states the database's cost target"
like "$report" "Memory with 100,000 nodes at rest" "the report compares memory at rest"
like "$report" "daemon CPU µs per request" "the report states targets on CPU per request"
like "$report" "The database's cost in process" "the report gives db-cost's figures"
# What idle CPUs did, in the report's words for the header's value.
case $want in
poll) idle_words="Idle CPUs polled rather than halted for the whole run \\(a PM QoS" ;;
boot) idle_words="booted with idle=poll" ;;
nodriver) idle_words="Idle CPUs halted in this run: the kernel has no cpuidle driver" ;;
*) idle_words="Idle CPUs halted in this run \\(no PM QoS request" ;;
esac
like "$report" "$idle_words" "the report says what idle CPUs did ($want)"
like "$report" "\| no database \| database \| added \|" "... its table, measured in this run"
if [ "$(nproc)" -ge 2 ]; then
    like "$report" "\| 10 µs \| [0-9]+\.[0-9]{2} \|" "the report gives wake-cost's table"
fi

# Real-Xen boots: the targets' ratios, and each boot's reference shown.
cp "$results" "$tmp/xen.txt"
cat >>"$tmp/xen.txt" <<'EOF2'
xen_boot daemon=ours round=1 boot_s=20.00 storm_s=120.00 daemon_cpu_s=20.00 ref_s=1.50 guests=4
xen_boot daemon=upstream-c round=1 boot_s=10.00 storm_s=60.00 daemon_cpu_s=10.00 ref_s=1.40 guests=4
xen_boot daemon=upstream-c round=2 boot_s=10.00 storm_s=60.00 daemon_cpu_s=10.00 ref_s=1.60 guests=4
xen_boot daemon=ours round=2 boot_s=20.00 storm_s=120.00 daemon_cpu_s=20.00 ref_s=1.50 guests=4
EOF2
run "$XS_REPO/bench/report" "$tmp/xen.txt" "$tmp/xen.md"
ok "$RUN_RC" "bench/report reads real-Xen boots" "$(_run_diag bench/report)"
row=$(grep '^| 4 guests created at once on real Xen' "$tmp/xen.md" 2>/dev/null)
like "$row" "2.00x \(120.00 s / 60.00 s; median of per-round ratios\)" \
    "the storm's target is the median of the per-round ratios"
like "$(cat "$tmp/xen.md" 2>/dev/null)" "\| 1.50 \(1.40..1.60\) \|" \
    "the Xen section shows the boots' references"

# Boots counted in instructions (tests/xen/run --icount): the report says so.
cp "$results" "$tmp/xen-icount.txt"
cat >>"$tmp/xen-icount.txt" <<'EOF2'
xen_boot daemon=ours round=1 boot_s=4.210 storm_s=15.930 daemon_cpu_s=0.262 ref_s=0.65 guests=4 clock=icount
xen_boot daemon=upstream-c round=1 boot_s=7.250 storm_s=18.850 daemon_cpu_s=0.341 ref_s=0.64 guests=4 clock=icount
EOF2
run "$XS_REPO/bench/report" "$tmp/xen-icount.txt" "$tmp/xen-icount.md"
row=$(grep '^| 4 guests created at once on real Xen' "$tmp/xen-icount.md" 2>/dev/null)
like "$row" "0.85x \(15.930 s / 18.850 s, counted in instructions; median of per-round ratios\)" \
    "a storm counted in instructions is reported so, to the millisecond"
like "$(cat "$tmp/xen-icount.md" 2>/dev/null)" "a nanosecond for each instruction" \
    "the Xen section explains the instruction clock"
# ... and two such runs are held to 5% in Repeatability, wall-clock ones not.
run "$XS_REPO/bench/report" --previous "$tmp/xen-icount.txt" "$tmp/xen-icount.txt" "$tmp/xen-rep.md"
row=$(grep '^| 4 guests created at once on real Xen' "$tmp/xen-rep.md" 2>/dev/null | tail -n 1)
like "$row" "\| \+0\.0% \|$" "boots counted in instructions in both runs count in Repeatability"
run "$XS_REPO/bench/report" --previous "$tmp/xen.txt" "$tmp/xen.txt" "$tmp/xen-rep2.md"
row=$(grep '^| 4 guests created at once on real Xen' "$tmp/xen-rep2.md" 2>/dev/null | tail -n 1)
like "$row" "\(not counted\)" "wall-clock boots do not"

# bench/ab, one build against itself: a line per workload and configuration, each ratio a number.
run "$XS_REPO/bench/ab" -r 1 -t 50 "$XS_BUILD/xenstored" "$XS_BUILD/xenstored" "$XS_BUILD"
ok "$RUN_RC" "bench/ab runs" "$(_run_diag bench/ab)"
rows=$(printf '%s\n' "$RUN_OUT" | grep -cE '^(read|write|txn5) .* (database|nodb) +[0-9.]+ \(.*\) +[0-9.]+ \(' || true)
is "$rows" 12 "bench/ab compares 6 workloads, with and without the database"
# ... the workload -w names alone, and -n's variable in the new build's daemons only.
run "$XS_REPO/bench/ab" -r 1 -t 50 -w "write 1 raw" -n XENSTORED_JOURNAL_LIMIT=1M \
    "$XS_BUILD/xenstored" "$XS_BUILD/xenstored" "$XS_BUILD"
ok "$RUN_RC" "bench/ab runs one workload" "$(_run_diag bench/ab)"
rows=$(printf '%s\n' "$RUN_OUT" | grep -cE '^write 1 client\(s\) raw +(database|nodb) +[0-9.]+ \(' || true)
is "$rows" 2 "bench/ab runs only the workload -w names"
given=$(printf '%s\n' "$RUN_OUT" | grep -E '^[a-z-]+: XENSTORED_JOURNAL_LIMIT=' || true)
is "$given" "new: XENSTORED_JOURNAL_LIMIT=1M"$'\n'"new-nodb: XENSTORED_JOURNAL_LIMIT=1M" \
    "bench/ab gives -n's variable to the new build's daemons, and only to them"
holders=$(dma_latency_holders)
is "$holders" "" "nothing holds /dev/cpu_dma_latency open after bench/ab"
run "$XS_REPO/bench/ab" -n NOT-A-VARIABLE "$XS_BUILD/xenstored" "$XS_BUILD/xenstored" "$XS_BUILD"
is "$RUN_RC" 2 "bench/ab refuses an environment that is not VAR=VALUE"

# bench/probes: the probes build's counts a turn, the database's parts only with the database.
run "$XS_REPO/bench/probes" -r 1 -t 50 "$XS_BUILD"
ok "$RUN_RC" "bench/probes runs" "$(_run_diag bench/probes)"
like "$RUN_OUT" "requests a turn +[0-9.]+ +[0-9.]+" "bench/probes gives the requests a turn of both"
like "$RUN_OUT" "slow sends \\(over [0-9.]+k\\), of turns +[0-9]+% +[0-9]+%" \
    "bench/probes gives the share of turns whose send was slow, for both"
like "$RUN_OUT" "recording the changes +[1-9][0-9]* +0"$'\n' "only the database records changes"
like "$RUN_OUT" "sending the held replies +[1-9][0-9]* +[1-9][0-9]*"$'\n' "both send replies"
like "$RUN_OUT" "database: probes unit=(tsc|ns) .*record_count=[1-9]" \
    "the database's counts, as its daemon printed them"
like "$RUN_OUT" "nodb: probes unit=(tsc|ns) .*seal_count=0 " "--no-database seals nothing"
nm_probes=$(nm "$XS_BUILD/xenstored" 2>/dev/null | grep -c probe_sums || true)
is "$nm_probes" 0 "the daemon itself has no probes"

# bench/ab-restart, one build against itself on a small database.
db=$tmp/abr.tdb
start_daemon --database "$db"
succeeds "a database to start on" xenstore-write /abr/a 1 /abr/b 2
stop_daemon
run "$XS_REPO/bench/ab-restart" -n 2 "$db" "$XS_BUILD/xenstored" "$XS_BUILD/xenstored"
ok "$RUN_RC" "bench/ab-restart runs" "$(_run_diag bench/ab-restart)"
rows=$(printf '%s\n' "$RUN_OUT" | grep -cE '^(old|new)  start to ready +[0-9]+ ms \([0-9]+\.\.[0-9]+\)  CPU +[0-9]+ ms' || true)
is "$rows" 2 "bench/ab-restart times both builds"
like "$RUN_OUT" "new/old CPU: [0-9]+\.[0-9]{3} \(" "bench/ab-restart gives their ratio"
run "$XS_REPO/bench/ab-restart" -n 1 "$tmp/none.tdb" "$XS_BUILD/xenstored" /bin/false
[ "$RUN_RC" -ne 0 ]
ok $? "bench/ab-restart fails when a build does not start" "$(_run_diag bench/ab-restart)"

done_testing
