/*
 * persist/ internals: compaction, which brings the tdb file (the
 * checkpoint) up to date with a journal and then removes the journal.
 *
 * compact_file does it in the calling thread.  compact_start runs it on a
 * thread of its own, so the event loop never waits for it: the tdb handle
 * is the thread's until compact_poll (or compact_wait) has joined it, and
 * nothing else may touch it meanwhile.  One at a time.
 */
#ifndef XS_COMPACT_H
#define XS_COMPACT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>		/* tdb.h wants mode_t */

#include <tdb.h>

/*
 * Apply the journal at path to tdb in one tdb transaction, then unlink
 * it.  0 (also when there is no such file), or -1 with why filled: the
 * transaction is cancelled, and the journal is left.  A crash anywhere
 * leaves the tdb before or after the transaction with the journal still
 * there, and applying it again gives the same file: each change is a
 * whole record set or removed.
 */
int compact_file(struct tdb_context *tdb, const char *path, char *why,
		 size_t why_len);

struct compaction {
	pthread_t thread;
	bool running;			/* started and not joined yet */
	atomic_bool done;		/* the thread is about to return */
	struct tdb_context *tdb;	/* borrowed; the thread's meanwhile */
	const char *path;		/* borrowed */
	int rc;
	char why[200];
};

/* 0, or -1 with errno when no thread could be made. */
int compact_start(struct compaction *c, struct tdb_context *tdb,
		  const char *path);
/*
 * A compaction that has finished (any, with wait) is joined: 1 and
 * *failed (with c->why) says how it went; 0 when none is (or none ran).
 */
int compact_poll(struct compaction *c, bool wait, bool *failed);

#endif
