/*
 * bench/timing: the clock and the statistics every benchmark shares.
 *
 * The machine the benchmarks run on is noisy, so each program measures
 * several rounds and reports their median rather than a mean.
 */
#ifndef XS_BENCH_TIMING_H
#define XS_BENCH_TIMING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Clock clock's time in nanoseconds (the caller's own CPU clocks too). */
uint64_t bench_clock_ns(clockid_t clock);

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void);

/* Busy-wait ns of monotonic time, reading no CPU clock (a read of its
 * own would bring the kernel's count of the caller's CPU time up to
 * date, which is what bench_cpu_ns must be tested without). */
void bench_spin_ns(uint64_t ns);

/*
 * The CPU time process pid has used, in nanoseconds: all its threads,
 * those that have exited included (a daemon's short-lived helper threads
 * count).  -1 with errno set if it cannot be read.  On a virtual machine
 * with the paravirtual steal clock (Linux's PARAVIRT_TIME_ACCOUNTING, as
 * under KVM), time the hypervisor gave another guest is not counted: the
 * figure follows the work done, not the host's contention.  The read
 * waits (50 to 75 ms at most) until none of pid's threads is on a CPU,
 * since the kernel brings another process's clock up to date only at
 * its threads' switches and ticks: call it where the daemon is about to
 * idle.
 */
int64_t bench_cpu_ns(pid_t pid);

/* Median of v[0..n) (n >= 1); v is left in its order (per-round figures
 * are paired by position, so a sort here would silently unpair them). */
double bench_median(const double *v, size_t n);

/* Sort v[0..n) ascending in place (for a min..max). */
void bench_sort(double *v, size_t n);

/* The value below which a fraction p (0 < p <= 1) of v[0..n) lies
 * (nearest rank, n >= 1); sorts v in place. */
double bench_percentile(double *v, size_t n, double p);

/* A small deterministic generator, so every run touches the same nodes. */
uint64_t bench_rand(uint64_t *state);

#endif
