/*
 * Compaction: a journal merged into the checkpoint, on a thread
 * (compact.h).
 *
 * Only the last change of each key counts (a fold).  The old checkpoint
 * is read once, each of its records kept unless the journal changed it
 * (a changed node's new record takes its place), then the journal's
 * other records are added, into a new checkpoint renamed over the old
 * one (checkpoint.h): the cost is a pass over the checkpoint, compressed
 * (about 9 bytes a node), plus the journal.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <tdb.h>

#include "persist/checkpoint.h"
#include "persist/compact.h"
#include "persist/crash.h"
#include "persist/journal.h"

struct merge {
	const struct fold *f;
	struct ckpt_writer *w;
	unsigned char *taken;	/* [f->count]: written in an old record's
				 * place */
	unsigned char *copy;	/* a record given its birth (add_put) */
	size_t copy_cap;
	char *why;
	size_t why_len;
};

/* The journal's put of key, e's change, as a record of the new
 * checkpoint: a node's that says "as before" given its birth, born. */
static int add_put(struct merge *m, const void *key, size_t klen,
		   const struct fold_entry *e, uint64_t born)
{
	const struct schema_change *c = &e->c;

	if (!schema_key_is_node(key, klen) || c->value_len < 8 ||
	    schema_record_born(key, klen, c->value, c->value_len))
		return ckpt_add(m->w, key, klen, c->value, c->value_len);
	if (!born) {
		snprintf(m->why, m->why_len, "the journal changes %.*s, "
			 "which the checkpoint lacks", (int)(klen < 64 ? klen
							      : 64),
			 (const char *)key);
		return -1;
	}
	if (m->copy_cap < c->value_len) {
		unsigned char *p = realloc(m->copy, c->value_len);

		if (!p) {
			snprintf(m->why, m->why_len, "out of memory");
			return -1;
		}
		m->copy = p;
		m->copy_cap = c->value_len;
	}
	memcpy(m->copy, c->value, c->value_len);
	schema_node_set_born(m->copy, born);
	return ckpt_add(m->w, key, klen, m->copy, c->value_len);
}

/*
 * A record of the old checkpoint: kept unless the journal changed it,
 * and then the journal's record in its place when it is the same node
 * changed (its put says "as before", or names the same birth), so that
 * the file keeps every node after its parent and a load finds the
 * parents first (load.c).  A node the journal made again goes with the
 * journal's new nodes.
 */
static int keep_old(const void *key, size_t klen, const void *val,
		    size_t vlen, void *arg)
{
	struct merge *m = arg;
	const struct fold_entry *e = fold_find(m->f, key, klen);
	uint64_t born, old_born;

	if (!e)
		return ckpt_add(m->w, key, klen, val, vlen);
	if (!e->c.put)
		return 0;
	born = fold_entry_born(e);
	old_born = schema_record_born(key, klen, val, vlen);
	if (born && born != old_born)
		return 0;	/* made again */
	m->taken[e - m->f->v] = 1;
	return add_put(m, key, klen, e, old_born);
}

static bool touched(const void *path, size_t len, void *arg)
{
	const struct merge *m = arg;

	return fold_find(m->f, path, len) != NULL;
}

/* A block the journal left alone, copied as it is: a merge then costs
 * a block's decompression and lookups, not its packing again, where the
 * journal changed nothing. */
static int keep_block(const void *packed, size_t len, uint64_t nodes,
		      void *arg)
{
	struct merge *m = arg;

	return ckpt_add_block(m->w, packed, len, nodes);
}

static const struct ckpt_block_ops keep_untouched = {
	.touched = touched,
	.whole = keep_block,
};

/* The size of tdb's file (0 if unknown). */
static uint64_t file_size(struct tdb_context *tdb)
{
	struct stat sb;

	return fstat(tdb_fd(tdb), &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* The checkpoint at tdb_path with f on top, as a new checkpoint. */
static int merge(const struct fold *f, const char *tdb_path, char *why,
		 size_t why_len)
{
	struct merge m = { .f = f, .why = why, .why_len = why_len };
	struct tdb_context *tdb;
	uint32_t version = 0;
	TDB_DATA v;
	int rc;

	errno = 0;
	/* Read-write: a file of version 2 may need tdb's recovery first. */
	tdb = tdb_open(tdb_path, 0, TDB_NOLOCK | TDB_NOSYNC |
		       TDB_INCOMPATIBLE_HASH, O_RDWR | O_CLOEXEC, 0600);
	if (!tdb) {
		snprintf(why, why_len, "opening %s: %s", tdb_path,
			 errno ? strerror(errno) : "not a tdb file");
		return -1;
	}
	v = tdb_fetch(tdb, (TDB_DATA){ (unsigned char *)SCHEMA_KEY_FORMAT,
				       strlen(SCHEMA_KEY_FORMAT) });
	rc = v.dptr && schema_decode_format(v.dptr, v.dsize, &version) ==
		       SCHEMA_OURS ? 0 : -1;
	free(v.dptr);
	if (rc != 0)
		snprintf(why, why_len, "%s has no format record of ours",
			 tdb_path);
	else if (!(m.taken = calloc(f->count ? f->count : 1, 1)) ||
		 !(m.w = ckpt_create(tdb_path, file_size(tdb), f->count,
				     why, why_len))) {
		if (!m.taken)
			snprintf(why, why_len, "out of memory");
		rc = -1;
	}
	else
		/* An older version's blocks are packed again, in this
		 * one's encoding. */
		rc = ckpt_read_merging(tdb, version, keep_old,
				       version == SCHEMA_DB_VERSION ?
				       &keep_untouched : NULL,
				       &m, why, why_len);
	tdb_close(tdb);
	/* Then what else the journal put, in the order it first named each
	 * key: parents first ("#format", say, is the writer's own: its
	 * version is this daemon's). */
	for (size_t i = 0; rc == 0 && i < f->count; i++) {
		const struct schema_change *c = &f->v[i].c;

		if (c->put && !m.taken[i] &&
		    !ckpt_key_is_own(c->key, c->key_len))
			rc = add_put(&m, c->key, c->key_len, &f->v[i],
				     fold_entry_born(&f->v[i]));
	}
	free(m.taken);
	free(m.copy);
	if (rc == 0)
		return ckpt_commit(m.w);
	ckpt_abandon(m.w);
	return -1;
}

/* k maps the journal at path, as the loop left it: its pages and page
 * tables are there, where a new mapping would fault on each page the
 * index points into. */
static bool kept_is(const struct journal_kept *k, const char *path)
{
	struct stat sb;

	return k && k->map && k->end && stat(path, &sb) == 0 &&
	       sb.st_dev == k->dev && sb.st_ino == k->ino &&
	       (size_t)sb.st_size == k->end;
}

/* compact_file, the journal then kept as a renewed spare when spare is not
 * NULL (*spared), or removed. */
static int compact_to(const char *tdb_path, const char *path,
		      const char *spare, const struct journal_kept *k,
		      bool check, const struct jindex *ix, bool *spared,
		      char *why, size_t why_len)
{
	struct journal_map m;
	struct journal_scan s;
	struct fold f;
	const char *bad;
	size_t held;
	int rc;

	fold_init(&f);
	memset(&m, 0, sizeof(m));
	if (ix && !ix->off && !check) {
		/* Only the changes the index points at (jindex.h). */
		memset(&s, 0, sizeof(s));
		if (kept_is(k, path))
			rc = jindex_fold(ix, k->map, k->end, &f, &bad);
		else if ((rc = journal_map(path, false, &m)) != 0) {
			bad = strerror(errno);
			rc = errno == ENOENT ? 1 : -1;
		} else {
			rc = jindex_fold(ix, m.p, m.len, &f, &bad);
		}
	} else {
		rc = journal_fold_file(path, check, &m, &f, &s, &bad);
	}
	if (rc < 0)
		snprintf(why, why_len, "reading %s: %s (at byte %zu)", path,
			 bad, s.at);
	else if (rc == 0 && f.count)
		rc = merge(&f, tdb_path, why, why_len);
	held = f.cap * sizeof(*f.v) + (f.slots ? (f.mask + 1) * sizeof(*f.slots)
					       : 0);
	fold_free(&f);
	journal_unmap(&m);
	/* A big fold's memory (a journal of many keys: 100 MB for a million)
	 * back to the system: its large blocks have mappings of their own
	 * (daemon/main.c's thresholds), but its keys' chunks sit in this
	 * thread's arena, whose free pages below its top stay resident
	 * until trimmed. */
	if (held > (1u << 20))
		malloc_trim(0);
	if (rc > 0)
		return 0;		/* none: applied and removed before */
	/* Renamed, it is gone as a journal as surely as unlinked: a restart
	 * never reads a spare (db_open removes it). */
	if (rc == 0 && spare && rename(path, spare) == 0) {
		CRASH_POINT("compact-spared");
		if (journal_renew(spare) == 0) {
			CRASH_POINT("compact-renewed");
			*spared = true;
		} else {
			(void)unlink(spare);	/* new journals, then */
		}
		return 0;
	}
	if (rc == 0 && unlink(path) != 0) {
		snprintf(why, why_len, "removing %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (rc == 0)
		CRASH_POINT("compact-unlinked");
	return rc;
}

int compact_file(const char *tdb_path, const char *path, bool check,
		 const struct jindex *ix, char *why, size_t why_len)
{
	return compact_to(tdb_path, path, NULL, NULL, check, ix, NULL, why,
			  why_len);
}

/* The job compact_start gave, its result in c->rc and c->why. */
static void run_job(struct compaction *c)
{
	int wake_fd = c->wake_fd;	/* c is the loop's once done */
	uint64_t one = 1;

	c->rc = compact_to(c->tdb_path, c->path, c->spare, &c->kept,
			   c->check, &c->index, &c->spared, c->why,
			   sizeof(c->why));
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->done, true);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	/* An eventfd's counter cannot overflow from one add a compaction. */
	if (wake_fd >= 0 && write(wake_fd, &one, sizeof(one)) < 0)
		(void)0;	/* the next commit polls all the same */
}

/* A thread with no job for this long ends (compact_start makes another),
 * if nothing ended it before: the loop ends it when its burst does
 * (compact_retire, the quiet rule), so that a host at rest keeps no stack,
 * arena or contexts for it.  This is the bound for a loop without a quiet
 * rule.  Not one second, as it was: a daemon sharing its CPU with busy
 * processes spreads a burst's merges over more seconds, and the
 * benchmark's five daemons taking turns of 100 ms made ours a new thread
 * and new contexts four or five times in 21 rounds of pipelined WRITEs. */
#define COMPACT_IDLE_MS 10000

static void *worker(void *arg)
{
	struct compaction *c = arg;

	ckpt_keep_contexts(true);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct timespec until;
		bool last;
		int rc = 0;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(c->idle_ms / 1000);
		until.tv_nsec += (long)(c->idle_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!c->job && !c->quit && !c->retire && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&c->cond, &c->lock,
						    &until);
		if (!c->job) {
			c->retired = true;
			break;
		}
		c->job = false;
		last = c->job_last;
		pthread_mutex_unlock(&c->lock);
		run_job(c);
		pthread_mutex_lock(&c->lock);
		if (last && !c->job) {
			c->retired = true;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	ckpt_keep_contexts(false);
	/* What the compactions freed in this thread's arena goes back too
	 * (its contexts just now): a host at rest kept 0.3 to 1 MB of it
	 * with 100,000 nodes.  Its top stays, up to the daemon's trim
	 * threshold (daemon/main.c). */
	malloc_trim(0);
	return NULL;
}

void compact_init(struct compaction *c)
{
	pthread_condattr_t attr;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	/* Its idle wait is timed on the clock that never jumps. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&c->done, false);
	c->idle_ms = COMPACT_IDLE_MS;
	jindex_init(&c->index);
	c->index.off = true;
}

/* The thread, at the loop's priority until calm() (hurried): glibc's
 * thread attributes take no SCHED_IDLE. */
static int make_thread(struct compaction *c)
{
	sigset_t all, old;
	int err;

	/* Signals are the event loop's: the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&c->thread, NULL, worker, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	c->have_thread = err == 0;
	c->hurried = true;
	return err;
}

/*
 * Requests first.  On the CPU the event loop runs on, a compaction at the
 * loop's priority delays each of its wake-ups by a time slice: a client
 * with one write in flight got a third of its writes through during a
 * merge of a million nodes, and a nice value of 10 did no better.
 * SCHED_IDLE runs it only when that CPU has nothing else to do, until
 * compact_hurry.  Set by the loop while the thread waits for its job, so
 * that nothing undoes a compact_hurry after; where it is refused, the
 * thread stays at the loop's priority (hurried).
 */
static void calm(struct compaction *c)
{
	struct sched_param idle = { .sched_priority = 0 };

	if (c->hurried &&
	    pthread_setschedparam(c->thread, SCHED_IDLE, &idle) == 0)
		c->hurried = false;
}

int compact_start(struct compaction *c, const char *tdb_path,
		  const char *path, const char *spare, bool check,
		  struct jindex *ix, struct journal_kept *k, int wake_fd)
{
	bool retired;
	int err;

	if (c->running) {	/* its index is the running thread's */
		if (ix)
			jindex_free(ix);
		if (k)
			journal_kept_free(k);
		errno = EBUSY;
		return -1;
	}
	journal_kept_free(&c->kept);
	if (k) {
		c->kept = *k;
		k->map = NULL;
	}
	jindex_free(&c->index);		/* off: the journal is read whole */
	if (ix) {
		c->index = *ix;
		jindex_init(ix);
		ix->off = true;
	}
	c->tdb_path = tdb_path;
	c->path = path;
	c->spare = spare;
	c->spared = false;
	c->check = check;
	c->wake_fd = wake_fd;
	c->rc = 0;
	c->why[0] = '\0';
	atomic_store(&c->done, false);
	for (;;) {
		if (!c->have_thread && (err = make_thread(c)) != 0) {
			errno = err;
			return -1;
		}
		calm(c);
		/* Given only under the lock the thread retires under: one
		 * that has not retired yet sees the job before it can. */
		pthread_mutex_lock(&c->lock);
		retired = c->retired;
		if (!retired) {
			c->job = true;
			c->retire = false;
			c->job_last = c->last;
			pthread_cond_signal(&c->cond);
		}
		pthread_mutex_unlock(&c->lock);
		if (!retired)
			break;
		pthread_join(c->thread, NULL);
		c->have_thread = c->retired = c->retire = false;
	}
	c->running = true;
	return 0;
}

void compact_hurry(struct compaction *c)
{
	struct sched_param normal = { .sched_priority = 0 };

	if (!c->running || c->hurried)
		return;
	if (pthread_setschedparam(c->thread, SCHED_OTHER, &normal) == 0)
		c->hurried = true;
}

int compact_poll(struct compaction *c, bool wait, bool *failed)
{
	if (!c->running || (!wait && !atomic_load(&c->done)))
		return 0;
	pthread_mutex_lock(&c->lock);
	while (!atomic_load(&c->done))
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	c->running = false;
	jindex_free(&c->index);
	*failed = c->rc != 0;
	return 1;
}

void compact_retire(struct compaction *c)
{
	if (!c->have_thread || c->running)
		return;
	pthread_mutex_lock(&c->lock);
	c->retire = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void compact_stop(struct compaction *c)
{
	if (!c->have_thread)
		return;
	/* The thread ends its job first: compact_poll still reaps it. */
	pthread_mutex_lock(&c->lock);
	c->quit = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	c->have_thread = c->quit = c->retired = c->retire = false;
}
