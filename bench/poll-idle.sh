# bench/poll-idle.sh, sourced by bench/run and bench/ab.
#
# poll_idle: idle CPUs poll instead of halting while the caller runs, as
# tuned's latency-performance profile makes them (a PM QoS request of 0 µs
# held open on /dev/cpu_dma_latency): on a virtual machine a halted CPU
# wakes through the hypervisor, 40-90 µs here and 250-1,400 µs in the
# host's spells, which would set the rate of every row with one request
# in flight whatever the daemon (bench/README.md).  Needs root; without
# it, or with BENCH_POLL_IDLE=0, CPUs halt.  Sets qos and qos_pid, the
# request's holder, which the caller kills when it ends.  qos is what
# idle CPUs do for the run:
#   poll      they poll: the request is held, and a cpuidle driver obeys it
#   boot      they poll whatever is asked: the kernel was booted idle=poll
#   nodriver  they halt: the kernel has no cpuidle driver, and without one
#             the request changes nothing (the idle loop halts directly),
#             so none is held
#   off       they halt: no request (not root, or BENCH_POLL_IDLE=0)
poll_idle() {
    local driver
    qos=off qos_pid=
    if grep -qw 'idle=poll' /proc/cmdline 2>/dev/null; then
        qos=boot
        return
    fi
    [ "${BENCH_POLL_IDLE:-1}" = 1 ] && [ -w /dev/cpu_dma_latency ] || return 0
    driver=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || true)
    if [ -z "$driver" ] || [ "$driver" = none ]; then
        qos=nodriver
        return
    fi
    (exec 9>/dev/cpu_dma_latency && printf '\x00\x00\x00\x00' >&9 &&
        exec sleep infinity) &
    qos_pid=$! qos=poll
}
