/*
 * bench/populate: fill a running daemon's store quickly.
 *
 * One xs_write round trip per node would make a million nodes take many
 * minutes; instead WRITE packets are pipelined on one raw socket, a batch
 * in flight while the replies of the previous one are read.
 */
#ifndef XS_BENCH_POPULATE_H
#define XS_BENCH_POPULATE_H

/*
 * Write nodes [from, to) of bench/layout.h through the Unix socket at
 * path.  0, or -1 with a message on stderr.
 */
int bench_populate(const char *path, unsigned long from, unsigned long to);

#endif
