/*
 * bench/results: the machine-readable record of a run.
 *
 * Each measurement is appended as one line to the file named by the
 * environment variable BENCH_RESULTS (nothing is written when it is unset):
 * the benchmark's name, then space-separated key=value pairs.  The readable
 * tables go to stdout separately.
 */
#ifndef XS_BENCH_RESULTS_H
#define XS_BENCH_RESULTS_H

/* Append one line; fmt should not end with a newline. */
void bench_result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
