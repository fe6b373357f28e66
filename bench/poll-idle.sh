# bench/poll-idle.sh, sourced by bench/run and bench/ab.
#
# poll_idle: idle CPUs poll instead of halting while the caller runs, as
# tuned's latency-performance profile makes them (a PM QoS request of 0 µs
# held open on /dev/cpu_dma_latency): on a virtual machine a halted CPU
# wakes through the hypervisor, 40-90 µs here and 250-1,400 µs in the
# host's spells, which would set the rate of every row with one request
# in flight whatever the daemon (bench/README.md).  Needs root; without
# it, or with BENCH_POLL_IDLE=0, CPUs halt.  Sets qos (poll or off) and
# qos_pid, the request's holder, which the caller kills when it ends.
poll_idle() {
    qos=off qos_pid=
    if [ "${BENCH_POLL_IDLE:-1}" = 1 ] && [ -w /dev/cpu_dma_latency ]; then
        (exec 9>/dev/cpu_dma_latency && printf '\x00\x00\x00\x00' >&9 &&
            exec sleep infinity) &
        qos_pid=$! qos=poll
    fi
}
