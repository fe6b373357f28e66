/*
 * bench/reference: a fixed piece of CPU work, run beside a measurement so
 * that runs can be compared on a time over it.  This host's CPU runs up
 * to 2.5-fold slower for minutes at a time (its other guests, its clock),
 * which a process's CPU clock does not take out: the restart with a
 * million nodes took 505 ms of CPU in one run and 688 in the next, on
 * the same code and file.  The reference slows alike.
 */
#ifndef XS_BENCH_REFERENCE_H
#define XS_BENCH_REFERENCE_H

/*
 * Work shaped like a daemon's: each of NODES paths of the store
 * (bench/layout.h) copied into an allocation of its own and keyed into an
 * open-addressing table by a hash of it, then every one looked up again;
 * in a child, pinned to cpu (-1: not pinned).  Its CPU time in ms, or -1
 * when it could not be run.
 */
double bench_reference_ms(unsigned long nodes, int cpu);

#endif
