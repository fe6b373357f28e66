/*
 * The database: a journal of commits in front of a tdb file, the
 * checkpoint (db.h; the layouts are schema/schema.h's).
 *
 * A commit is one frame appended to <path>.journal, copied into a shared
 * mapping of it (journal.h): its cost follows what changed, not the size
 * of the database.  Past
 * journal_limit bytes the journal is renamed <path>.journal.old, a new
 * one is started, and a thread merges the old one into a new checkpoint
 * renamed over the tdb file, then removes it (compact.c, checkpoint.c).
 * A restart reads the tdb file with both journals on top (load.c); a
 * clean stop and a live update merge them first, so that the tdb file
 * alone holds the state they leave.
 *
 * A change that cannot be recorded for want of memory leaves the journal
 * short of the state clients are told of: the commit that follows writes
 * the whole state from memory as a new checkpoint instead (a rewrite,
 * below), which supersedes both journals.
 *
 * The tdb file is opened without locking (TDB_NOLOCK): the pid file and
 * the socket already keep a second daemon away.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <tdb.h>

#include "log/log.h"
#include "log/probes.h"
#include "persist/crash.h"
#include "persist/db_impl.h"
#include "schema/schema.h"

/*
 * The size past which the journal is merged into a new checkpoint.  Both
 * journals live on tmpfs beside it, so each may hold about this much
 * (the live one a commit more).  A merge reads and writes the whole
 * checkpoint, so the limit grows with it: at least the checkpoint's size
 * (Redis rewrites its append-only file on the same rule), which bounds a
 * merge's work per byte of journal whatever the store's size, at the
 * cost of a journal as large as the checkpoint; and at least 16 MiB, so
 * a small store is not merged at every few hundred writes.  A merge of a
 * small store costs about the same whatever the journal's size (its
 * distinct nodes, not its changes): at 4 MiB, 64 WRITEs in flight to
 * 1,000 nodes paid 5% of the daemon's CPU for merges, about 30 a second;
 * at 8 MiB about 2% (16 a second, 1.1 to 1.3 ms of the thread's CPU
 * each), half of which 16 MiB saves (docs/durability.md: side by side,
 * the rate moved by nothing to 2.5%, with the setup).  A larger journal
 * also folds more writes of one key into one, but a restart after a
 * crash reads it all, and it is RAM on the tmpfs while a burst lasts
 * (the quiet rule merges it away after).
 * XENSTORED_JOURNAL_LIMIT sets a fixed one instead (the tests make it
 * small).
 */
#define JOURNAL_LIMIT_DEFAULT (16u << 20)
#define JOURNAL_LIMIT_ENV "XENSTORED_JOURNAL_LIMIT"

/*
 * The quiet rule: a live journal that no commit has added to for a whole
 * period, counted from the last commit, is compacted at once, if it holds at
 * least QUIET_MIN bytes and a sixteenth (QUIET_SHARE) of the checkpoint.
 * Most of a host's life is quiet, and the journal is RAM on the tmpfs:
 * after a burst (a fill, guests booting) the host should not keep up to
 * the limit's 16 MiB of changes it already has in memory and could hold
 * as a tenth of that in the checkpoint.  The share bounds the work: a
 * merge rewrites the checkpoint, and this rule rewrites it for at least a
 * sixteenth of its size in new changes (the limit's rule: its whole
 * size), no more often than once a period, and only when the daemon has
 * had nothing to commit for that long.  With a million nodes a merge
 * costs about 0.7 s of the thread's CPU, at most once per 7,000 writes
 * of a trickle (0.1 ms a write, on another CPU, when the daemon is
 * otherwise idle); a quarter kept up to 3.9 MB of journal at rest
 * instead of 1 MB (docs/durability.md).  The period is three seconds:
 * one activity's pauses (a toolstack's phases, a benchmark's turns) are
 * not rest, and a merge at each of them gave back the journal's pages,
 * spare and all, which the next phase allocated and faulted in again
 * (16 MiB with the 8 MiB limit of then, 16 to 20 ms on a virtual
 * machine: a tenth of a 300 ms burst of pipelined writes).  Memory is
 * given back seconds after a burst, as allocators' decay rules do
 * (jemalloc's: 10 s).
 * XENSTORED_JOURNAL_QUIET_MS sets the period (0: no quiet rule).
 */
#define QUIET_MS_DEFAULT 3000
#define QUIET_MIN (64u << 10)
#define QUIET_SHARE 16
#define QUIET_ENV "XENSTORED_JOURNAL_QUIET_MS"

/*
 * The spare journal.  A new journal's every page is allocated, zeroed
 * and faulted in as it fills (about 4.5 ms for 4 MiB here, and each
 * 256 KiB allocated ahead stalls the loop for a quarter of a
 * millisecond), then freed once merged.  While journals fill fast, the
 * compaction keeps the merged one instead, its head given a new salt
 * (journal_renew, in the thread), and the next rotation renames it to be
 * the live journal.  "Fast": the loop spent less than SPARE_WITHIN_NS of
 * its own CPU time from the rotation before to this one; with more, a
 * new journal's pages cost it under 1% of that time, and a spare would
 * only hold memory.  CPU time, not the clock's: a loop sharing its CPU
 * with other busy processes fills a journal over more seconds for the
 * same work (the benchmark's five daemons taking turns of 100 ms:
 * rotations 0.5 to 1.5 s apart, and a fresh journal at every one past
 * a second).  A spare costs no more than today's bound on the journals
 * (the live one and the old one, which the spare replaces), and the
 * quiet rule removes it.
 */
#define SPARE_WITHIN_NS 1000000000ull

static const char *const journal_suffix[JOURNALS] = {
	[JOURNAL_OLD] = ".journal.old",
	[JOURNAL_LIVE] = ".journal",
};

static void wait_compaction(struct db *db);
static void pending_clear(struct db *db);
static void drop_spare(struct db *db);
static void release_tdb(struct db *db);
static int rewrite(struct db *db);

/* A whole state being written as a new checkpoint (the first state, a
 * rewrite). */
struct rewrite {
	struct ckpt_writer *w;
	struct evbuffer *b;	/* one record at a time */
	uint64_t born;		/* the next node's (whole_born) */
	bool ok;
	char why[200];		/* what failed, once !ok */
};
static void rewrite_put(struct db *db, const char *key,
			struct evbuffer *value);

/*
 * Persistence off for good: every file emptied or removed, so that no
 * restart loads a state older than the one clients were told about.
 */
static void db_fail(struct db *db, const char *what, const char *why)
{
	if (db->failed)
		return;
	db->failed = true;
	log_error("database %s: %s failed: %s; persistence is off until the "
		  "daemon restarts, and the files are emptied so a restart "
		  "does not load an older state", db->path, what, why);
	/* The thread may hold the tdb: let it finish first. */
	wait_compaction(db);
	pending_clear(db);
	journal_close(&db->jout, false);
	release_tdb(db);	/* unmapped before it shrinks */
	if (truncate(db->path, 0) != 0)
		log_error("cannot empty %s: %s", db->path, strerror(errno));
	for (int i = 0; i < JOURNALS; i++) {
		if (unlink(db->jpath[i]) != 0 && errno != ENOENT)
			log_error("cannot remove %s: %s", db->jpath[i],
				  strerror(errno));
		db->jexists[i] = false;
	}
	drop_spare(db);
}

/* ---- the pending commit ---- */

/*
 * The pending frame's memory, kept from one commit to the next: most
 * turns' frames are a few KiB, and a buffer allocated afresh every turn
 * costs more than encoding its changes.  A frame past FRAME_KEEP (a big
 * transaction's) gives its memory back.
 */
#define FRAME_MIN (16u << 10)
#define FRAME_KEEP (1u << 20)

static void pending_clear(struct db *db)
{
	db->pending.len = 0;
	if (db->pending.cap > FRAME_KEEP) {
		free(db->pending.p);
		db->pending.p = NULL;
		db->pending.cap = 0;
	}
}

/*
 * A change could not be recorded: what is pending is dropped, nothing
 * more of this turn is recorded, and its commit is a rewrite (below),
 * which takes every change from memory.
 */
static void lose(struct db *db, const char *what)
{
	if (!db->lost)
		log_warn("database %s: %s; the commit writes the whole state "
			 "anew", db->path, what);
	db->lost = true;
	pending_clear(db);
}

/*
 * A merge of a journal into the file failed (a compaction's thread, or a
 * checkpoint's): the files are as before it, the journal still there.
 * The next commit writes the whole state anew, which supersedes it, and
 * fails in turn if the files cannot be written at all.
 */
static void merge_failed(struct db *db, const char *why)
{
	log_warn("database %s: bringing the database file up to date "
		 "failed: %s", db->path, why);
	lose(db, "the merge failed");
}

/* frame_reserve when the frame is not begun, or has no room left. */
static unsigned char *frame_grow(struct db *db, size_t more)
{
	struct frame_buf *f = &db->pending;

	if (db->failed || db->lost)
		return NULL;
	if (!f->len)
		f->len = SCHEMA_FRAME_HEAD;
	if (f->cap < f->len || more > f->cap - f->len) {
		size_t cap = f->cap ? f->cap : FRAME_MIN;
		unsigned char *p;

		while ((cap < f->len || more > cap - f->len) &&
		       cap <= SIZE_MAX / 2)
			cap *= 2;
		if (cap < f->len || more > cap - f->len ||
		    !(p = realloc(f->p, cap))) {
			lose(db, "no memory to record a change");
			return NULL;
		}
		f->p = p;
		f->cap = cap;
	}
	return f->p + f->len;
}

/* Room for more bytes at the pending frame's end, its head's room made
 * at the first change: where to write them (then add them to its len).
 * NULL when persistence is off, or the turn's commit is a rewrite anyway
 * (also for want of memory, after lose).  Inline for a begun frame with
 * room, which is every change of a turn but its first few: a pipelined
 * WRITE's record costs a few hundred instructions in all. */
static inline unsigned char *frame_reserve(struct db *db, size_t more)
{
	struct frame_buf *f = &db->pending;

	if (f->len && f->cap >= f->len && more <= f->cap - f->len &&
	    !db->failed && !db->lost)
		return f->p + f->len;
	return frame_grow(db, more);
}

/*
 * Where a change frame_reserve made room for lands in the live journal:
 * at the journal's end, after what is pending; before the journal is
 * open, after a new one's head (open_journal gives the index up when it
 * continues one from before instead).
 */
static uint64_t journal_offset(const struct db *db)
{
	uint64_t base = db->jout.fd >= 0 ? db->jout.end
					 : schema_journal_head_len();

	return base + db->pending.len;
}

/*
 * The change a writer put in db->scratch, moved to the pending frame:
 * false when it is not recorded (for want of memory: after lose).
 * *offset: where it lands in the live journal.
 */
static bool take_scratch(struct db *db, const struct writer *w,
			 uint64_t *offset)
{
	size_t len = evbuffer_get_length(db->scratch);
	unsigned char *at = NULL;

	if (!wr_ok(w))
		lose(db, "no memory to record a change");
	else
		at = frame_reserve(db, len);
	if (at) {
		*offset = journal_offset(db);
		evbuffer_remove(db->scratch, at, len);
		db->pending.len += len;
	}
	evbuffer_drain(db->scratch, evbuffer_get_length(db->scratch));
	return at != NULL;
}

void db_put(struct db *db, const char *key, struct evbuffer *value)
{
	struct writer w;
	uint64_t at;

	if (db && db->rewriting) {
		rewrite_put(db, key, value);
		return;
	}
	if (!db || db->failed || db->lost)
		return;
	wr_init(&w, db->scratch);
	schema_write_put(&w, key, value);
	if (take_scratch(db, &w, &at))
		jindex_other(&db->jindex, at);
}

/* A delete of key; of node id's record when id is not 0. */
static void delete_record(struct db *db, const char *key, uint32_t id)
{
	struct writer w;
	uint64_t at;

	/* A rewrite's checkpoint is new: it has nothing to delete. */
	if (!db || db->rewriting || db->failed || db->lost)
		return;
	wr_init(&w, db->scratch);
	schema_write_delete(&w, key);
	if (!take_scratch(db, &w, &at))
		return;
	if (id)
		jindex_removed(&db->jindex, id, at);
	else
		jindex_other(&db->jindex, at);
}

void db_delete(struct db *db, const char *key)
{
	delete_record(db, key, 0);
}

int db_put_encoded(struct db *db, const char *key,
		   void (*encode)(const void *obj, struct writer *w),
		   const void *obj)
{
	struct evbuffer *b;
	struct writer w;
	bool ok;

	if (!db)
		return 0;
	b = evbuffer_new();
	if (b) {
		wr_init(&w, b);
		encode(obj, &w);
	}
	ok = b && wr_ok(&w);
	if (ok)
		db_put(db, key, b);
	else if (db->rewriting)
		db->rewriting->ok = false;
	else if (!db->failed)
		lose(db, "no memory to encode a record");
	if (b)
		evbuffer_free(b);
	return ok ? 0 : -1;
}

/* ---- the journal ---- */

/* The limit for a checkpoint of size bytes (see JOURNAL_LIMIT_DEFAULT). */
static void follow_checkpoint_size(struct db *db, uint64_t size)
{
	db->checkpoint_size = size;
	if (!db->limit_fixed)
		db->limit = size > JOURNAL_LIMIT_DEFAULT ? size
							 : JOURNAL_LIMIT_DEFAULT;
}

static void checkpoint_written(struct db *db)
{
	struct stat sb;

	if (stat(db->path, &sb) == 0)
		follow_checkpoint_size(db, (uint64_t)sb.st_size);
}

/* Space allocated ahead of the live journal's last frame, a sixteenth
 * of its limit, at most 256 KiB: a fallocate and a populate about
 * every 2,500 commits of 100 bytes, at about a hundred microseconds. */
static size_t journal_ahead(const struct db *db)
{
	uint64_t a = db->limit / 16;

	return a < 4096 ? 4096 : a > (256u << 10) ? (256u << 10) : (size_t)a;
}

/* The live journal, open to append: the one found at start with its torn
 * tail cut (logged when it was read), or a new one. */
static bool open_journal(struct db *db)
{
	size_t whole = 0;

	if (db->jexists[JOURNAL_LIVE] &&
	    db->jwhole >= schema_journal_head_len_of(1)) {
		whole = db->jwhole;
		/* Its changes from before are in no index. */
		jindex_free(&db->jindex);
	}
	else
		db->jfound[JOURNAL_LIVE] = false;
	if (journal_open(&db->jout, db->jpath[JOURNAL_LIVE], whole,
			 journal_ahead(db)) != 0) {
		db_fail(db, "opening the journal", strerror(errno));
		return false;
	}
	db->jexists[JOURNAL_LIVE] = true;
	return true;
}

/* The pending frame, sealed and appended: one copy into the mapping.
 * 0; 1 when it is too big for a frame (nothing written); -1 after
 * db_fail when the journal could not be written. */
static int write_frame(struct db *db)
{
	size_t len = db->pending.len;
	unsigned char *p = db->pending.p;

	if (len - SCHEMA_FRAME_HEAD > UINT32_MAX)
		return 1;
	PROBE_START(t);
	schema_seal_frame(p, p + SCHEMA_FRAME_HEAD,
			  (uint32_t)(len - SCHEMA_FRAME_HEAD), db->jout.salt);
	PROBE_STOP(t, PROBE_SEAL);
	CRASH_POINT("commit-write");
	if (journal_append(&db->jout, p, len) != 0) {
		db_fail(db, "writing the journal", strerror(errno));
		return -1;
	}
	CRASH_POINT("commit-written");
	pending_clear(db);
	return 0;
}

/* ---- compaction ---- */

/* Compaction opens the tdb file for itself, and tdb refuses a second
 * handle on a file in one process: the load's goes first. */
static void release_tdb(struct db *db)
{
	if (db->tdb)
		tdb_close(db->tdb);
	db->tdb = NULL;
}

/* ix: the old journal's index, which the compaction takes; NULL: none;
 * so does it k, its mapping (or NULL).  spare: the journal is kept as
 * the spare (above), if none is and this daemon wrote it (its head is
 * this version's). */
static void start_compaction(struct db *db, struct jindex *ix,
			     struct journal_kept *k, bool spare)
{
	spare = spare && !db->spare_ready && !db->jfound[JOURNAL_OLD];
	release_tdb(db);
	if (compact_start(&db->compaction, db->path, db->jpath[JOURNAL_OLD],
			  spare ? db->spare_path : NULL,
			  db->jfound[JOURNAL_OLD], ix, k, db->wake_fd) != 0)
		/* Tried again at the next commit; the journal meanwhile
		 * grows on. */
		log_warn("database %s: cannot start a compaction: %s",
			 db->path, strerror(errno));
}

/* The end of a compaction, when one has ended (or, wait, whenever it
 * does): the old journal is gone, or persistence is off. */
static void reap_compaction(struct db *db, bool wait)
{
	bool failed;

	if (!compact_poll(&db->compaction, wait, &failed))
		return;
	if (failed) {
		merge_failed(db, db->compaction.why);
		return;
	}
	db->jexists[JOURNAL_OLD] = false;
	if (db->compaction.spared) {
		db->spare_ready = true;
		/* Its mapping comes with it. */
		journal_kept_free(&db->kept);
		db->kept = db->compaction.kept;
		db->compaction.kept.map = NULL;
	}
	journal_kept_free(&db->compaction.kept);
	checkpoint_written(db);
}

static void drop_spare(struct db *db)
{
	if (db->spare_ready && unlink(db->spare_path) != 0 &&
	    errno != ENOENT)
		log_warn("database %s: cannot remove %s: %s", db->path,
			 db->spare_path, strerror(errno));
	db->spare_ready = false;
	journal_kept_free(&db->kept);
}

/* Clock id's time in ns. */
static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The live journal's successor: the spare when there is one, else a new
 * file.  0, or -1 after db_fail. */
static int next_journal(struct db *db)
{
	const char *live = db->jpath[JOURNAL_LIVE];

	if (db->spare_ready) {
		db->spare_ready = false;
		if (journal_reuse(&db->jout, db->spare_path, live,
				  journal_ahead(db), &db->kept) == 0)
			return 0;
		journal_kept_free(&db->kept);
		/* Renamed or not, a new journal replaces it. */
		log_warn("database %s: cannot reuse %s: %s", db->path,
			 db->spare_path, strerror(errno));
		(void)unlink(db->spare_path);
	}
	if (journal_open(&db->jout, live, 0, journal_ahead(db)) != 0) {
		db_fail(db, "starting a journal", strerror(errno));
		return -1;
	}
	return 0;
}

static void wait_compaction(struct db *db)
{
	/* Whoever waits for it, it is the loop's whole work now. */
	compact_hurry(&db->compaction);
	reap_compaction(db, true);
}

/* The live journal becomes the old one, which a thread applies; a new
 * one takes the next commit. */
static void rotate(struct db *db)
{
	struct journal_kept kept;
	struct jindex old;
	uint64_t now;
	bool fast;

	/* Its zeros cut before the rename: the old journal is its frames.
	 * Its mapping is kept, in case it becomes the spare. */
	if (journal_close_keep(&db->jout, &kept) != 0) {
		db_fail(db, "closing the journal", strerror(errno));
		return;
	}
	if (rename(db->jpath[JOURNAL_LIVE], db->jpath[JOURNAL_OLD]) != 0) {
		journal_kept_free(&kept);
		db_fail(db, "renaming the journal", strerror(errno));
		return;
	}
	db->jexists[JOURNAL_OLD] = true;
	db->jfound[JOURNAL_OLD] = db->jfound[JOURNAL_LIVE];
	db->jexists[JOURNAL_LIVE] = db->jfound[JOURNAL_LIVE] = false;
	CRASH_POINT("rotate-renamed");
	if (next_journal(db) != 0) {
		journal_kept_free(&kept);
		return;
	}
	db->jexists[JOURNAL_LIVE] = true;
	CRASH_POINT("rotate-created");
	/* The index goes with its journal, to the compaction; the new
	 * journal starts one of its own. */
	old = db->jindex;
	jindex_init(&db->jindex);
	/* The loop's thread: rotate runs on it.  The quiet rule's rotation
	 * ends a burst: its journal is not kept (the loop, idle since, used
	 * next to no CPU time, and a spare kept then would stay at rest). */
	now = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	fast = !db->compaction.last && db->last_rotate_cpu_ns &&
	       now - db->last_rotate_cpu_ns < db->spare_within_ns;
	db->last_rotate_cpu_ns = now;
	start_compaction(db, &old, &kept, fast);
}

/* Start what the journals' sizes call for, once the start-up is over
 * (no thread before the daemon has forked): the live journal is set
 * aside past enough bytes (after a commit, its limit; after a quiet
 * period, the quiet rule's). */
static void compact_past(struct db *db, uint64_t enough)
{
	/* Lost: the commit's rewrite supersedes every journal. */
	if (!db->started || db->failed || db->lost)
		return;
	if (db->compaction.running) {
		/* The live journal at twice its limit: the compaction
		 * starves (compact.h). */
		if (db->jout.end >= 2 * db->limit)
			compact_hurry(&db->compaction);
		return;
	}
	if (db->jexists[JOURNAL_OLD])
		start_compaction(db, NULL, NULL, false);
	/* Not with changes pending (a compaction that ends in the middle of
	 * a turn): the index has them at offsets of this journal.  The
	 * turn's commit comes back here. */
	else if (db->jout.fd >= 0 && db->jout.end >= enough &&
		 !db->pending.len)
		rotate(db);
}

static void maybe_compact(struct db *db)
{
	compact_past(db, db->limit);
}

/* A commit's time for the quiet rule, once a turn: the coarse clock costs
 * a few ns, and its ticks of a few ms are nothing beside a period. */
static uint64_t coarse_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC_COARSE);
}

/*
 * The quiet rule's timer, due in ms.  A timerfd, not a libevent timer:
 * with a timer of its own pending, the loop's every wait for a request
 * reads the clock and sleeps with a timeout, which the kernel sets up as
 * an hrtimer each time; a client with one WRITE in flight paid about
 * 0.3 µs a request for that (perf), where the timerfd is set once a
 * period.
 */
static void arm_quiet(struct db *db, uint64_t ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000 },
	};

	/* Without the timer the journal waits for its limit, as before. */
	db->quiet_armed = timerfd_settime(db->quiet_fd, 0, &its, NULL) == 0;
	db->quiet_seen = db->commits;
}

/* The quiet rule (QUIET_MS_DEFAULT): the timer armed at a commit is due. */
static void quiet_check(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	uint64_t enough = db->checkpoint_size / QUIET_SHARE, n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0)
		(void)0;	/* EAGAIN: not due after all (set again) */
	db->quiet_armed = false;
	if (db->commits != db->quiet_seen) {
		/* Commits since: due a period after the last of them, not a
		 * whole period from now (a host at rest would keep its
		 * journal up to twice the period, and a reading of its
		 * memory at rest would catch it or not by chance). */
		uint64_t period = db->quiet_ms * 1000000u;
		uint64_t since = coarse_ns() - db->last_commit_ns;

		arm_quiet(db, since < period ? (period - since) / 1000000u + 1
					     : 1);
		return;
	}
	reap_compaction(db, false);
	/* Quiet: journals no longer fill fast. */
	drop_spare(db);
	if (db->compaction.running) {
		/* The burst's last merge still runs: the live journal's
		 * turn comes once it is done, else a host at rest could keep
		 * up to twice the limit in journals (26 MB at a million
		 * nodes) until its next write. */
		arm_quiet(db, db->quiet_ms);
		return;
	}
	/* The end of a burst: the thread need not wait for another.  With
	 * a merge to run it ends after it; else now. */
	db->compaction.last = true;
	compact_past(db, enough > QUIET_MIN ? enough : QUIET_MIN);
	db->compaction.last = false;
	compact_retire(&db->compaction);
	/* Kept or new, the live journal keeps no pages past its frames at
	 * rest (a reused spare's are its last life's: up to the limit).
	 * Failing only keeps them. */
	(void)journal_shrink(&db->jout);
	/* And the store what it holds ahead of its nodes. */
	store_rest();
}

int db_commit(struct db *db)
{
	int rc;

	if (!db)
		return 0;
	reap_compaction(db, false);
	if (db->failed)
		return -1;
	/* Before db_follow, nothing is acknowledged: it waits. */
	if (!db->followed)
		return 0;
	if (!db->lost) {
		if (!db->pending.len)
			return 0;
		if (db->jout.fd < 0 && !open_journal(db))
			return -1;
		if ((rc = write_frame(db)) < 0)
			return -1;
		if (rc > 0)
			lose(db, "a turn's changes too big for a frame");
	}
	if (db->lost && rewrite(db) != 0)
		return -1;
	db->commits++;
	if (db->quiet_ev) {
		db->last_commit_ns = coarse_ns();
		if (!db->quiet_armed)
			arm_quiet(db, db->quiet_ms);
	}
	maybe_compact(db);
	return db->failed ? -1 : 0;
}

bool db_pending(const struct db *db)
{
	return db && !db->failed &&
	       (db->lost || db->pending.len > 0);
}

int db_checkpoint(struct db *db)
{
	char why[200];

	if (!db)
		return 0;
	if (db_commit(db) != 0)
		return -1;
	/* A compaction that fails leaves the files as they were and the
	 * state to be written whole from memory: it cannot turn
	 * persistence off. */
	wait_compaction(db);
	if (db->lost)
		return rewrite(db);
	release_tdb(db);
	/* Where its frames end, should it be written on after all. */
	if (db->jout.fd >= 0)
		db->jwhole = db->jout.end;
	if (journal_close(&db->jout, true) != 0) {
		db_fail(db, "closing the journal", strerror(errno));
		return -1;
	}
	for (int i = 0; i < JOURNALS; i++) {
		if (!db->jexists[i])
			continue;
		if (compact_file(db->path, db->jpath[i], db->jfound[i],
				 NULL, why, sizeof(why)) != 0) {
			merge_failed(db, why);
			return rewrite(db);
		}
		db->jexists[i] = false;
	}
	/* The next commit starts a new journal, a new index with it. */
	jindex_free(&db->jindex);
	jindex_init(&db->jindex);
	drop_spare(db);
	checkpoint_written(db);
	return 0;
}

/* A compaction's thread has ended: reaped, and the next one started if
 * the live journal has passed its limit meanwhile. */
static void compaction_woke(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0)
		(void)0;	/* EAGAIN: a wake-up already taken */
	reap_compaction(db, false);
	maybe_compact(db);
}

/* The loop's event on *fd (readable: cb): false when it cannot be had,
 * *fd closed then and -1, *ev NULL. */
static bool fd_event(struct event_base *base, int *fd, struct event **ev,
		     event_callback_fn cb, struct db *db)
{
	if (*fd >= 0 &&
	    (*ev = event_new(base, *fd, EV_READ | EV_PERSIST, cb, db)) &&
	    event_add(*ev, NULL) == 0)
		return true;
	if (*ev)
		event_free(*ev);
	*ev = NULL;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return false;
}

int db_notify(struct db *db, struct event_base *base)
{
	if (!db || db->wake_ev)
		return 0;
	db->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (db->wake_fd < 0)
		return -1;
	if (!fd_event(base, &db->wake_fd, &db->wake_ev, compaction_woke, db)) {
		errno = ENOMEM;
		return -1;
	}
	if (db->quiet_ms) {
		int err;

		db->quiet_fd = timerfd_create(CLOCK_MONOTONIC,
					      TFD_NONBLOCK | TFD_CLOEXEC);
		err = db->quiet_fd < 0 ? errno : 0;
		if (!fd_event(base, &db->quiet_fd, &db->quiet_ev, quiet_check,
			      db))
			log_warn("database %s: no timer for the quiet rule "
				 "(%s): journals wait for their limit",
				 db->path, err ? strerror(err) : "no memory");
		else if (db->commits)
			arm_quiet(db, db->quiet_ms);
	}
	return 0;
}

void db_loaded_done(struct db *db)
{
	if (!db)
		return;
	drop_side_records(db);
	drop_journal_reads(db);
	db->started = true;
	/* What the start-up changed (an upgrade's records put again, say)
	 * reaches the live journal before a compaction merges an old one:
	 * a crash then finds it on top of whatever that merge wrote. */
	db_commit(db);
	maybe_compact(db);
}

/* ---- nodes ---- */

/* A node as its record; born: as store_observer's (0: as before). */
static struct schema_node node_rec(const struct node *n, uint64_t born)
{
	const struct perms *p = node_perms(n);

	return (struct schema_node){
		.born = born, .nperms = p->n, .perms = p->e,
		.value = node_value(n), .value_len = node_value_len(n),
	};
}

static void node_changed(const struct node *n, const char *path,
			 size_t klen, uint64_t born, void *arg)
{
	struct db *db = arg;
	struct schema_node rec = node_rec(n, born);
	size_t len;
	unsigned char *at;
	PROBE_START(t);

	/* Its entry is fetched while the change is encoded. */
	jindex_prefetch(&db->jindex, node_id(n));
	len = schema_put_node_len(klen, &rec);
	at = frame_reserve(db, len);
	if (at) {
		uint64_t offset = journal_offset(db);

		schema_put_node_at(at, path, klen, &rec);
		db->pending.len += len;
		jindex_put(&db->jindex, node_id(n), offset);
	}
	PROBE_STOP(t, PROBE_RECORD);
}

/*
 * A whole copy of the store numbers its nodes' births afresh, in the
 * order store_each gives them (parents first, siblings in order), from
 * generations taken for it: a node's birth is not kept in memory
 * (store.h), and these order the copy as the births did.
 */
static uint64_t whole_born(struct store *s)
{
	return store_take_gens(s, store_count(s));
}

struct saving {
	struct db *db;
	uint64_t born;		/* the next node's */
};

/* Every node, as store_each gives them: as if each were created. */
static void node_saved(const struct node *n, const char *path, void *arg)
{
	struct saving *sv = arg;

	node_changed(n, path, strlen(path), sv->born++, sv->db);
}

static void node_removed(const struct node *n, const char *path, void *arg)
{
	delete_record(arg, path, node_id(n));
}

/* ---- the whole state as a new checkpoint ---- */

static void whole_node(const struct node *n, const char *path, void *arg)
{
	struct rewrite *rw = arg;
	struct schema_node rec = node_rec(n, rw->born++);
	struct writer w;
	unsigned char *p;

	if (!rw->ok)
		return;
	evbuffer_drain(rw->b, evbuffer_get_length(rw->b));
	wr_init(&w, rw->b);
	schema_write_node(&w, &rec);
	p = wr_ok(&w) ? evbuffer_pullup(rw->b, -1) : NULL;
	rw->ok = p && ckpt_add(rw->w, path, strlen(path), p,
			       evbuffer_get_length(rw->b)) == 0;
}

/* A new checkpoint beside the file, holding every node of the store:
 * false (rw->why says why) when it cannot be had. */
static bool whole_begin(struct db *db, struct rewrite *rw)
{
	snprintf(rw->why, sizeof(rw->why), "out of memory");
	rw->w = ckpt_create(db->path, db->checkpoint_size,
			    store_count(db->store), rw->why, sizeof(rw->why));
	rw->b = evbuffer_new();
	rw->ok = rw->w && rw->b;
	if (rw->ok) {
		rw->born = whole_born(db->store);
		store_each(db->store, whole_node, rw);
	}
	return rw->ok;
}

/* Renamed over the file if all went in, else removed: 0, or -1. */
static int whole_end(struct rewrite *rw)
{
	int rc = -1;

	if (rw->ok)
		rc = ckpt_commit(rw->w);
	else
		ckpt_abandon(rw->w);
	if (rw->b)
		evbuffer_free(rw->b);
	return rc;
}

/* db_put during a rewrite: into its checkpoint. */
static void rewrite_put(struct db *db, const char *key,
			struct evbuffer *value)
{
	struct rewrite *rw = db->rewriting;
	size_t len = evbuffer_get_length(value);
	unsigned char *p = len ? evbuffer_pullup(value, -1)
			       : (unsigned char *)"";

	if (rw->ok)
		rw->ok = p && ckpt_add(rw->w, key, strlen(key), p, len) == 0;
}

static void encode_mark(const void *mark, struct writer *w)
{
	schema_write_mark(w, *(const uint64_t *)mark);
}

/* The live journal's last frame: "#superseded" with mark, recorded as
 * any change is.  0, or -1 (after db_fail when the write failed). */
static int mark_journal(struct db *db, uint64_t mark)
{
	db->lost = false;	/* the mark alone makes the frame */
	db_put_encoded(db, SCHEMA_KEY_SUPERSEDED, encode_mark, &mark);
	if (db->lost || (db->jout.fd < 0 && !open_journal(db)) ||
	    write_frame(db) != 0) {
		db->lost = true;
		pending_clear(db);
		return -1;
	}
	return 0;
}

/* A random mark for a rewrite (0 is drawn again): the kernel's, or
 * should it have none, the clock's and the process's. */
static uint64_t rewrite_mark(void)
{
	uint64_t mark;

	if (getrandom(&mark, sizeof(mark), 0) == (ssize_t)sizeof(mark))
		return mark;
	return clock_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 40);
}

/*
 * The rewrite (see lose): the whole state from memory into a new
 * checkpoint that supersedes both journals, which lack what could not be
 * recorded and, replayed over it, would undo some of what it holds.  In
 * this order, so that a crash anywhere leaves a state a start loads
 * whole:
 * 1. the checkpoint written beside the file (CKPT_NEXT_SUFFIX): the
 *    nodes, every owner's '#' records put again by its saver, and
 *    "#rewrite" holding a random mark;
 * 2. a last frame on the live journal, "#superseded" with the same mark
 *    (a crash before it, or before 3: the file and journals as they
 *    were, the state before this turn, which no client was told of; the
 *    mark then names no checkpoint and means nothing);
 * 3. the rename over the file;
 * 4. the journals removed, the old one first (a crash before: a start
 *    finds the live journal's mark in the file's "#rewrite" and drops
 *    both, load.c).
 * It stalls the loop for a pass over the store (about a second for a
 * million nodes): rare, as memory running out is.  When it fails too,
 * persistence is off (db_fail).
 */
static int rewrite(struct db *db)
{
	struct rewrite rw;
	uint64_t mark = 0;

	/* A compaction writes the file too: it finishes first (a failure
	 * of it only makes this rewrite due). */
	wait_compaction(db);
	while (!mark)
		mark = rewrite_mark();
	if (whole_begin(db, &rw)) {
		db->rewriting = &rw;
		for (int i = 0; i < DB_SAVERS; i++)
			if (db->savers[i].fn)
				db->savers[i].fn(db->savers[i].arg);
		db_put_encoded(db, SCHEMA_KEY_REWRITE, encode_mark, &mark);
		db->rewriting = NULL;
	}
	if (rw.ok && (db->jexists[JOURNAL_LIVE] || db->jexists[JOURNAL_OLD]) &&
	    mark_journal(db, mark) != 0) {
		rw.ok = false;
		snprintf(rw.why, sizeof(rw.why), "no memory for its mark");
	}
	CRASH_POINT("rewrite-marked");
	/* db_fail does nothing more when the mark's write called it. */
	if (whole_end(&rw) != 0) {
		db_fail(db, "writing the whole state anew", rw.why);
		return -1;
	}
	CRASH_POINT("rewrite-renamed");
	journal_close(&db->jout, false);
	for (int i = 0; i < JOURNALS; i++) {
		if (db->jexists[i] && unlink(db->jpath[i]) != 0 &&
		    errno != ENOENT) {
			db_fail(db, "removing a superseded journal",
				strerror(errno));
			return -1;
		}
		db->jexists[i] = db->jfound[i] = false;
		if (i == JOURNAL_OLD)
			CRASH_POINT("rewrite-old-removed");
	}
	jindex_free(&db->jindex);
	jindex_init(&db->jindex);
	db->lost = false;
	checkpoint_written(db);
	log_warn("database %s: the whole state written anew (%lu nodes); "
		 "persistence goes on", db->path, store_count(db->store));
	return 0;
}

/*
 * A new file's first state: s, as a checkpoint renamed into place (no
 * daemon served from it yet, so no journal).  A crash before the rename
 * leaves no file, new again, not one that claims a state it does not
 * hold.
 */
static void init_file(struct db *db)
{
	struct rewrite rw;

	whole_begin(db, &rw);
	if (whole_end(&rw) == 0)
		db->fresh = false;
	else
		db_fail(db, "writing the first state", rw.why);
}

void db_follow(struct db *db, struct store *s, bool save_all)
{
	bool was_fresh = db->fresh;

	db->store = s;
	if (was_fresh)
		init_file(db);
	/* From now on only compaction opens the tdb file (compact.h). */
	release_tdb(db);
	db->followed = true;
	db->observer.changed = node_changed;
	db->observer.removed = node_removed;
	db->observer.arg = db;
	s->observer = &db->observer;
	if (save_all && !was_fresh) {
		/* A new file had it written above. */
		struct saving sv = { db, whole_born(s) };

		store_each(s, node_saved, &sv);
		db_commit(db);
	}
	/* Else an upgrade's changes, made before, go at the turn's end. */
}

int db_add_saver(struct db *db, void (*fn)(void *arg), void *arg)
{
	for (int i = 0; db && i < DB_SAVERS; i++) {
		if (!db->savers[i].fn) {
			db->savers[i] = (struct saver){ fn, arg };
			return 0;
		}
	}
	return db ? -1 : 0;
}

void db_remove_saver(struct db *db, void (*fn)(void *arg), void *arg)
{
	for (int i = 0; db && i < DB_SAVERS; i++)
		if (db->savers[i].fn == fn && db->savers[i].arg == arg)
			db->savers[i] = (struct saver){ NULL, NULL };
}

/* ---- the files ---- */

/* Whether a format record (the file's, or a journal's newer one) is
 * ours, of a version we read; false after a log message naming what it
 * is instead. */
static bool format_ok(struct db *db, const void *p, size_t len)
{
	uint32_t version = 0;
	enum schema_format f = schema_decode_format(p, len, &version);

	db->version = version;
	if (f == SCHEMA_OTHER_VERSION)
		log_error("%s is a xenstored database of version %u, and this "
			  "daemon reads version %u only; move it away to start "
			  "empty", db->path, version, SCHEMA_DB_VERSION);
	else if (f == SCHEMA_FOREIGN)
		log_error("%s is not a xenstored database; move it away to "
			  "start empty", db->path);
	return f == SCHEMA_OURS;
}

static void encode_format(const void *unused, struct writer *w)
{
	(void)unused;
	schema_write_format(w);
}

/* This version's format record, with the pending commit. */
static int put_format(struct db *db)
{
	if (db_put_encoded(db, SCHEMA_KEY_FORMAT, encode_format, NULL) != 0)
		return -1;
	db->version = SCHEMA_DB_VERSION;
	return 0;
}

uint32_t db_version(const struct db *db)
{
	return db->version;
}

int db_upgraded(struct db *db)
{
	uint32_t old = db->version;

	if (put_format(db) != 0)
		return -1;
	/* A warning: from the next commit, an older daemon cannot read it. */
	log_warn("database %s: version %u read; written as version %u from "
		 "the next commit", db->path, old, SCHEMA_DB_VERSION);
	return 0;
}

/*
 * The number environment variable var sets, from min to max (a size:
 * bytes, or with k or M), in *n: true; false when it sets none, or sets
 * something else (warned: what it must be).
 */
static bool env_number(const char *var, bool size, uint64_t min,
		       uint64_t max, const char *what, uint64_t *n)
{
	const char *v = getenv(var);
	unsigned long long x;
	char *end;

	if (!v)
		return false;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (size && (*end == 'k' || *end == 'K'))
		x <<= 10, end++;
	else if (size && *end == 'M')
		x <<= 20, end++;
	if (errno || end == v || *end || x < min || x > max) {
		log_warn("%s=%s is not %s: ignored", var, v, what);
		return false;
	}
	*n = x;
	return true;
}

/* The journal limit from the environment, or 0 when it sets none. */
static uint64_t journal_limit(void)
{
	uint64_t n;

	return env_number(JOURNAL_LIMIT_ENV, true, 1, 1ull << 40,
			  "a size in bytes", &n) ? n : 0;
}

/* The quiet rule's period from the environment, in ms (0: none). */
static uint64_t quiet_period(void)
{
	uint64_t n;

	return env_number(QUIET_ENV, false, 0, 3600u * 1000u,
			  "a period in ms", &n) ? n : QUIET_MS_DEFAULT;
}

static char *with_suffix(const char *path, const char *suffix)
{
	size_t n = strlen(path), m = strlen(suffix);
	char *s = malloc(n + m + 1);

	if (s) {
		memcpy(s, path, n);
		memcpy(s + n, suffix, m + 1);
	}
	return s;
}

static void db_free(struct db *db)
{
	if (db->quiet_ev)
		event_free(db->quiet_ev);
	if (db->quiet_fd >= 0)
		close(db->quiet_fd);
	if (db->wake_ev)
		event_free(db->wake_ev);
	if (db->wake_fd >= 0)
		close(db->wake_fd);
	release_tdb(db);
	/* Its zeros stay (a reader takes them for the end): another
	 * process may have written after this one's last frame. */
	journal_close(&db->jout, false);
	journal_kept_free(&db->kept);
	compact_stop(&db->compaction);
	journal_kept_free(&db->compaction.kept);
	jindex_free(&db->compaction.index);
	drop_side_records(db);
	drop_journal_reads(db);
	jindex_free(&db->jindex);
	free(db->pending.p);
	if (db->scratch)
		evbuffer_free(db->scratch);
	for (int i = 0; i < JOURNALS; i++)
		free(db->jpath[i]);
	free(db->spare_path);
	free(db->path);
	free(db);
}

/* A checkpoint that a crash cut short (checkpoint.h): the journals it
 * was made of are still there. */
static void remove_stale_next(struct db *db)
{
	char *next = with_suffix(db->path, CKPT_NEXT_SUFFIX);

	if (next && unlink(next) == 0)
		log_warn("database %s: removed %s, a checkpoint left unfinished",
			 db->path, next);
	free(next);
	/* A spare holds nothing (merged changes, whatever its head). */
	(void)unlink(db->spare_path);
}

struct db *db_open(const char *path, bool *restorable)
{
	struct db *db = calloc(1, sizeof(*db));
	const struct fold_entry *fe;
	struct stat sb;
	TDB_DATA v;
	bool fresh, ok;

	*restorable = false;
	if (db) {
		db->jout.fd = -1;
		db->wake_fd = -1;
		db->quiet_fd = -1;
		fold_init(&db->fold);
		jindex_init(&db->jindex);
		compact_init(&db->compaction);
	}
	if (!db || !(db->path = strdup(path)) ||
	    !(db->jpath[JOURNAL_OLD] = with_suffix(path, journal_suffix[JOURNAL_OLD])) ||
	    !(db->jpath[JOURNAL_LIVE] = with_suffix(path, journal_suffix[JOURNAL_LIVE])) ||
	    !(db->spare_path = with_suffix(path, ".journal.spare")) ||
	    !(db->scratch = evbuffer_new())) {
		log_error("database %s: out of memory", path);
		goto fail;
	}
	db->limit = journal_limit();
	db->spare_within_ns = SPARE_WITHIN_NS;
	db->limit_fixed = db->limit != 0;
	db->quiet_ms = quiet_period();
	remove_stale_next(db);
	fresh = stat(path, &sb) != 0 || sb.st_size == 0;
	follow_checkpoint_size(db, fresh ? 0 : (uint64_t)sb.st_size);
	if (fresh) {
		unlink(path);	/* an empty file is not a tdb yet */
		goto new_database;
	}
	/* Read-write, though nothing here writes: a file of version 2 may
	 * need tdb's recovery of a transaction cut short. */
	errno = 0;
	db->tdb = tdb_open(path, 0, TDB_NOLOCK | TDB_NOSYNC |
			   TDB_INCOMPATIBLE_HASH, O_RDWR | O_CLOEXEC, 0600);
	if (!db->tdb) {
		log_error("cannot open the database %s: %s (corrupt? move it "
			  "away to start empty)", path,
			  errno ? strerror(errno) : "not a valid tdb file");
		goto fail;
	}
	v = tdb_fetch(db->tdb, key_of(SCHEMA_KEY_FORMAT));
	if (!v.dptr && tdb_error(db->tdb) != TDB_ERR_NOEXIST) {
		log_error("%s is not a xenstored database; move it away to "
			  "start empty", path);
		goto fail;
	}
	if (v.dptr) {
		ok = format_ok(db, v.dptr, v.dsize);
		free(v.dptr);
		db->file_version = db->version;
		v = tdb_fetch(db->tdb, key_of(SCHEMA_KEY_REWRITE));
		if (v.dptr) {
			db->rewrite_mark = schema_decode_mark(v.dptr, v.dsize);
			free(v.dptr);
		}
		if (!ok || read_journals(db) != 0)
			goto fail;
		/* An upgrade's format record may be in a journal only. */
		fe = fold_find(&db->fold, SCHEMA_KEY_FORMAT,
			       strlen(SCHEMA_KEY_FORMAT));
		if (fe && (!fe->c.put ||
			   !format_ok(db, fe->c.value, fe->c.value_len)))
			goto fail;
		*restorable = true;
		return db;
	}
	{
		TDB_DATA k = tdb_firstkey(db->tdb);

		if (k.dptr) {
			free(k.dptr);
			log_error("%s holds records but is not a xenstored "
				  "database; move it away to start empty", path);
			goto fail;
		}
	}
	/* An empty tdb: as new (its first state replaces it). */
	release_tdb(db);
new_database:
	/* A new database: its first state and format record go in at
	 * db_follow, together. */
	remove_stale_journals(db);
	db->fresh = true;
	db->version = SCHEMA_DB_VERSION;
	return db;

fail:
	if (db)
		db_free(db);
	return NULL;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	/* Started (a daemon that served): the tdb file takes the journals,
	 * so it alone holds the state.  Before that, only what is pending
	 * goes to the journal (a start that failed changes nothing). */
	if (db->started)
		db_checkpoint(db);
	else
		db_commit(db);
	wait_compaction(db);
	db_free(db);
}

const char *db_path(const struct db *db)
{
	return db->path;
}
