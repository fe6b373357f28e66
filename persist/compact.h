/*
 * persist/ internals: compaction, which merges a journal into the
 * checkpoint (a new one, checkpoint.h) and then removes the journal, or
 * keeps it, renewed, as the spare the next live journal reuses (db.c).
 *
 * compact_file does it in the calling thread.  compact_start runs it on a
 * thread of its own, so the event loop never waits for it.  One at a
 * time.
 */
#ifndef XS_COMPACT_H
#define XS_COMPACT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "persist/jindex.h"

/*
 * Merge the journal at path into the checkpoint at tdb_path, then unlink
 * the journal.  0 (also when there is no such file), or -1 with why
 * filled: the checkpoint and the journal are left as they were.  A crash
 * anywhere leaves the old checkpoint or the new one, with the journal
 * still there, which a restart puts on top; merging it again gives the
 * same state: each change is a whole record set or removed.  check: the
 * journal is from before this daemon started, and its frames' checksums
 * and changes are checked again (a torn tail is left out); without, this
 * daemon wrote it, and only reads it back (journal_scan).  ix, when not
 * NULL, says where the journal's last changes are (jindex.h): only those
 * are read.
 */
int compact_file(const char *tdb_path, const char *path, bool check,
		 const struct jindex *ix, char *why, size_t why_len);

/*
 * The thread that runs compactions (compact_start) lives while they come
 * (it ends when told, compact_retire, after idle_ms without one, or at
 * compact_stop): making one a compaction cost more than most merges (a
 * stack mapped, faulted in and given back, about 22 times a second under
 * pipelined WRITEs).
 */
struct compaction {
	pthread_t thread;
	bool have_thread;		/* made, and not yet stopped */
	bool running;			/* a job given and not yet polled */
	bool hurried;			/* at the loop's priority (else
					 * SCHED_IDLE: compact_start) */
	pthread_mutex_t lock;		/* guards job, quit and done's wait */
	pthread_cond_t cond;
	bool job, quit;			/* for the thread: work, or end */
	bool retire;			/* for the thread: end once idle */
	bool retired;			/* it ended, idle (compact.c) */
	unsigned idle_ms;		/* it ends after this long without a
					 * job (compact.c's COMPACT_IDLE_MS) */
	/* Set by the caller of compact_start: the job ends a burst (the
	 * quiet rule's), so the thread ends after it rather than waiting
	 * its idle second with its contexts; job_last is the job's copy. */
	bool last, job_last;
	atomic_bool done;		/* the job's result is in rc, why */
	const char *tdb_path;		/* borrowed */
	const char *path;		/* borrowed */
	const char *spare;		/* borrowed; NULL: none */
	bool spared;			/* the journal is now the spare */
	struct journal_kept kept;	/* the loop's mapping of the journal,
					 * owned (none: map NULL): the fold
					 * reads through it, and once polled
					 * the loop takes it back with the
					 * spare (db.c) */
	bool check;
	struct jindex index;		/* the journal's, owned (off: none) */
	int wake_fd;			/* an eventfd the thread adds 1 to
					 * once done, or -1 */
	int rc;
	char why[200];
};

/* Ready for compact_start (no thread yet). */
void compact_init(struct compaction *c);
/* The thread ended, after the job it runs (if any, which compact_poll
 * still reaps); the next compact_start makes another.  Safe to call
 * twice. */
void compact_stop(struct compaction *c);

/* 0, or -1 with errno when no thread could be made (or one runs).  The
 * thread runs it at SCHED_IDLE.  wake_fd: as
 * struct compaction's (the caller keeps it open).  spare: where the
 * merged journal goes, renewed (journal_renew), to be the next live one
 * (c->spared once done), rather than be removed; NULL: removed.  ix:
 * the journal's index (NULL: none, it is read whole), the compaction's
 * from now on; *ix is left off, whatever the result.  k (or NULL): the
 * loop's mapping of the journal, c->kept from now on (which its
 * journal's end holds: see journal_close_keep); *k is left empty,
 * whatever the result. */
int compact_start(struct compaction *c, const char *tdb_path,
		  const char *path, const char *spare, bool check,
		  struct jindex *ix, struct journal_kept *k, int wake_fd);
/* The burst is over (the quiet rule): an idle thread ends now, giving
 * back its stack, contexts and arena, rather than at its idle_ms; the
 * next compact_start makes another.  Nothing while a job runs (its
 * caller asks again later) or when there is no thread. */
void compact_retire(struct compaction *c);
/* The journal grows faster than the compaction drains it (a loop that
 * leaves its CPU no idle time): from now on it runs at the loop's
 * priority, so that the journals stay bounded. */
void compact_hurry(struct compaction *c);

/*
 * A compaction that has finished (any, with wait) is joined: 1 and
 * *failed (with c->why) says how it went; 0 when none is (or none ran).
 */
int compact_poll(struct compaction *c, bool wait, bool *failed);

#endif
