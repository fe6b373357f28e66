/*
 * Compaction: a journal applied to the tdb file, on a thread (compact.h).
 *
 * Only the last change of each key is applied (a fold): the cost is one
 * tdb_store or tdb_delete per key changed, plus libtdb's fixed cost of a
 * transaction (about a tenth of a millisecond) per COMPACT_KEYS keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <tdb.h>

#include "persist/compact.h"
#include "persist/crash.h"
#include "persist/journal.h"

/*
 * Keys a tdb transaction at most.  Before it commits, libtdb copies every
 * 4 KiB block the transaction changed into the file's recovery area,
 * which stays as large as the largest transaction made it: one
 * transaction for a journal of scattered overwrites grew a file of a
 * million nodes from 200 MB to 437 MB, on tmpfs.  This bounds the area to
 * a few blocks a key (about 16 MiB).  A crash between two transactions
 * leaves part of the journal applied, and the journal there: a restart
 * puts the whole journal on top again, and applying it again changes
 * nothing, so that is as safe as one transaction.
 */
#define COMPACT_KEYS 2048

/* Entries [from, to) of f in one transaction. */
static int apply_some(const struct fold *f, size_t from, size_t to,
		      struct tdb_context *tdb, char *why, size_t why_len)
{
	if (tdb_transaction_start(tdb) != 0) {
		snprintf(why, why_len, "starting a transaction: %s",
			 tdb_errorstr(tdb));
		return -1;
	}
	for (size_t i = from; i < to; i++) {
		const struct fold_entry *e = &f->v[i];
		TDB_DATA k = { (unsigned char *)e->c.key, e->c.key_len };
		TDB_DATA v = { (unsigned char *)e->c.value, e->c.value_len };
		int rc = e->c.put ? tdb_store(tdb, k, v, TDB_REPLACE)
				  : tdb_delete(tdb, k);

		if (rc != 0 && (e->c.put || tdb_error(tdb) != TDB_ERR_NOEXIST)) {
			snprintf(why, why_len, "writing a record: %s",
				 tdb_errorstr(tdb));
			tdb_transaction_cancel(tdb);
			return -1;
		}
		CRASH_POINT("compact-record");
	}
	CRASH_POINT("compact-commit");
	if (tdb_transaction_commit(tdb) != 0) {
		snprintf(why, why_len, "committing: %s", tdb_errorstr(tdb));
		return -1;
	}
	CRASH_POINT("compact-committed");
	return 0;
}

static int apply(const struct fold *f, struct tdb_context *tdb, char *why,
		 size_t why_len)
{
	for (size_t i = 0; i < f->count; i += COMPACT_KEYS) {
		size_t to = f->count - i > COMPACT_KEYS ? i + COMPACT_KEYS
						       : f->count;

		if (apply_some(f, i, to, tdb, why, why_len) != 0)
			return -1;
	}
	return 0;
}

/*
 * libtdb (1.4) leaves part of its mapping behind when a transaction grew
 * the file: growing maps the file at its new size, and the commit sets
 * the size back to the old one before it maps the file again, so only
 * that much of the old mapping is unmapped.  The rest outlives tdb_close,
 * a few MiB of address space (and of RSS, where touched) per compaction.
 * Nothing else maps the tdb file, so once it is closed every mapping of
 * it left in /proc/self/maps is such a leftover, and goes.
 */
int compact_close_tdb(struct tdb_context *tdb)
{
	struct { unsigned long start, end; } gone[64];
	unsigned long start, end, ino;
	unsigned int maj, min, n = 0;
	char line[4096];
	struct stat sb;
	bool known = fstat(tdb_fd(tdb), &sb) == 0;
	int rc = tdb_close(tdb);
	FILE *f;

	if (!known || !(f = fopen("/proc/self/maps", "re")))
		return rc;
	while (n < 64 && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %*s %*x %x:%x %lu", &start, &end, &maj,
			   &min, &ino) == 5 &&
		    ino == (unsigned long)sb.st_ino &&
		    makedev(maj, min) == sb.st_dev) {
			gone[n].start = start;
			gone[n++].end = end;
		}
	fclose(f);
	/* Unmapped once the listing is read: it changes with them. */
	for (unsigned int i = 0; i < n; i++)
		munmap((void *)gone[i].start, gone[i].end - gone[i].start);
	return rc;
}

/* f to the file at tdb_path, opened and closed here. */
static int apply_file(const struct fold *f, const char *tdb_path, char *why,
		      size_t why_len)
{
	struct tdb_context *tdb;
	int rc;

	errno = 0;
	tdb = tdb_open(tdb_path, 0, TDB_NOLOCK | TDB_NOSYNC |
		       TDB_INCOMPATIBLE_HASH, O_RDWR | O_CLOEXEC, 0600);
	if (!tdb) {
		snprintf(why, why_len, "opening %s: %s", tdb_path,
			 errno ? strerror(errno) : "not a tdb file");
		return -1;
	}
	rc = apply(f, tdb, why, why_len);
	if (compact_close_tdb(tdb) != 0 && rc == 0) {
		snprintf(why, why_len, "closing %s", tdb_path);
		rc = -1;
	}
	return rc;
}

int compact_file(const char *tdb_path, const char *path, bool check,
		 char *why, size_t why_len)
{
	struct journal_map m;
	struct journal_scan s;
	struct fold f;
	const char *bad;
	size_t held;
	int rc;

	fold_init(&f);
	rc = journal_fold_file(path, check, &m, &f, &s, &bad);
	if (rc < 0)
		snprintf(why, why_len, "reading %s: %s (at byte %zu)", path,
			 bad, s.at);
	else if (rc == 0 && f.count)
		rc = apply_file(&f, tdb_path, why, why_len);
	held = f.cap * sizeof(*f.v) + (f.slots ? (f.mask + 1) * sizeof(*f.slots)
					       : 0);
	fold_free(&f);
	journal_unmap(&m);
	/* A big fold's memory (a journal of many keys: 100 MB for a million)
	 * back to the system: glibc's dynamic mmap threshold keeps such
	 * blocks in this thread's arena, in the daemon's RSS, until the
	 * next compaction that large. */
	if (held > (1u << 20))
		malloc_trim(0);
	if (rc > 0)
		return 0;		/* none: applied and removed before */
	if (rc == 0 && unlink(path) != 0) {
		snprintf(why, why_len, "removing %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (rc == 0)
		CRASH_POINT("compact-unlinked");
	return rc;
}

static void *run(void *arg)
{
	struct compaction *c = arg;
	uint64_t one = 1;

	c->rc = compact_file(c->tdb_path, c->path, c->check, c->why,
			     sizeof(c->why));
	atomic_store(&c->done, true);
	/* An eventfd's counter cannot overflow from one add a compaction. */
	if (c->wake_fd >= 0 && write(c->wake_fd, &one, sizeof(one)) < 0)
		(void)0;	/* the next commit polls all the same */
	return NULL;
}

int compact_start(struct compaction *c, const char *tdb_path,
		  const char *path, bool check, int wake_fd)
{
	sigset_t all, old;
	int err;

	if (c->running) {
		errno = EBUSY;
		return -1;
	}
	c->tdb_path = tdb_path;
	c->path = path;
	c->check = check;
	c->wake_fd = wake_fd;
	c->rc = 0;
	c->why[0] = '\0';
	atomic_store(&c->done, false);
	/* Signals are the event loop's: the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&c->thread, NULL, run, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		errno = err;
		return -1;
	}
	c->running = true;
	return 0;
}

int compact_poll(struct compaction *c, bool wait, bool *failed)
{
	if (!c->running || (!wait && !atomic_load(&c->done)))
		return 0;
	pthread_join(c->thread, NULL);
	c->running = false;
	*failed = c->rc != 0;
	return 1;
}
