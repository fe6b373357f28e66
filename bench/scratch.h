/*
 * bench/scratch: what the benchmark programs share besides their clocks:
 * pinning a process to a CPU, removing a scratch directory, and reading a
 * list of numbers from the command line.
 */
#ifndef XS_BENCH_SCRATCH_H
#define XS_BENCH_SCRATCH_H

/* Pin the calling process (and what it execs) to cpu: 0, or -1 (errno). */
int bench_pin_cpu(int cpu);

/* Remove dir and everything below it; what is already gone is fine. */
void bench_rmtree(const char *dir);

/* Read arg, comma-separated numbers each within lo..hi, into out (room for
 * max): how many, or -1 when one is not a number, out of range, or past
 * max. */
int bench_parse_list(const char *arg, unsigned long *out, int max,
		     unsigned long lo, unsigned long hi);

#endif
