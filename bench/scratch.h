/*
 * bench/scratch: what the benchmarks that start their own daemons share:
 * pinning a process to a CPU, and removing their scratch directory.
 */
#ifndef XS_BENCH_SCRATCH_H
#define XS_BENCH_SCRATCH_H

/* Pin the calling process (and what it execs) to cpu: 0, or -1 (errno). */
int bench_pin_cpu(int cpu);

/* Remove dir and everything below it; what is already gone is fine. */
void bench_rmtree(const char *dir);

#endif
