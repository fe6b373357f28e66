/*
 * persist/ internals: struct db, shared by db.c (the files, writes and
 * commits) and load.c (reading them back at start-up).  Nothing else sees
 * it.
 */
#ifndef XS_DB_IMPL_H
#define XS_DB_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <event2/event.h>
#include <tdb.h>

#include "persist/checkpoint.h"
#include "persist/compact.h"
#include "persist/db.h"
#include "persist/jindex.h"
#include "persist/journal.h"

/* A '#' record as the load found it (db_each, db_get). */
struct side_record {
	char *key;		/* owned; the data follows its NUL */
	const unsigned char *data;
	size_t len;
};

/* Owners of '#' records: the server's, the domain table's, and room. */
#define DB_SAVERS 4

/* The journals, in the order they are replayed. */
enum { JOURNAL_OLD, JOURNAL_LIVE, JOURNALS };

struct db {
	/* The checkpoint, open until db_follow; then only compaction opens
	 * it, on a handle of its own (compact.h). */
	struct tdb_context *tdb;
	char *path;
	char *jpath[JOURNALS];	/* <path>.journal.old, <path>.journal */
	bool failed;		/* a write failed: persistence is off */
	bool lost;		/* a change could not be recorded (no memory):
				 * the next commit is a rewrite (db.c) */
	bool fresh;		/* a new file, empty until db_follow */
	bool followed;		/* db_follow was called: commits write */
	bool started;		/* db_loaded_done: compactions may run */
	uint32_t version;	/* the format (SCHEMA_DB_VERSION...): the
				 * file's, or a journal's newer one */
	uint32_t file_version;	/* the tdb file's own, which says how its
				 * nodes are kept */
	/* The next frame, in one piece: SCHEMA_FRAME_HEAD bytes of room,
	 * then the changes since the last commit; len 0 when there are
	 * none.  Its memory is kept from one commit to the next (db.c). */
	struct frame_buf {
		unsigned char *p;
		size_t len, cap;
	} pending;
	/* A '#' record's change on its way into the frame (writers append
	 * to an evbuffer). */
	struct evbuffer *scratch;
	struct store_observer observer;
	struct store *store;	/* the one db_follow follows */
	/* A rewrite's checkpoint, which db_put adds to while the savers put
	 * their records again (NULL: they go to the pending frame). */
	struct rewrite *rewriting;
	struct saver {
		void (*fn)(void *arg);
		void *arg;
	} savers[DB_SAVERS];
	/* The "#rewrite" record of the checkpoint db_open found (0: none):
	 * journals marked with it are superseded (load.c). */
	uint64_t rewrite_mark;
	struct journal_out jout;	/* the live journal; fd -1: not
					 * open (there may be one from before) */
	bool jexists[JOURNALS];	/* the file is there */
	bool jfound[JOURNALS];	/* it was there at start (and is read
				 * back checked, not trusted as ours) */
	struct jindex jindex;	/* where the live journal holds each node's
				 * last change (off: it was not written
				 * from its start by this daemon) */
	size_t jwhole;		/* found at start: where the live journal's
				 * whole frames end (its torn tail is cut
				 * there before anything is appended) */
	uint64_t limit;		/* rotate the live journal past this */
	bool limit_fixed;	/* set by the environment, not by the
				 * checkpoint's size */
	struct compaction compaction;	/* of jpath[JOURNAL_OLD] */
	/* <path>.journal.spare: a merged journal kept, renewed, for the next
	 * rotation to reuse (db.c); spare_ready: it is there.  Made only
	 * while journals fill within spare_within_ns of the loop's CPU
	 * time (SPARE_WITHIN_NS; last_rotate_cpu_ns: the loop thread's CPU
	 * time at the last rotation, 0 before the first). */
	char *spare_path;
	bool spare_ready;
	/* The mapping of the journal that is, or is being made, the spare
	 * (journal.h): its page tables go with it into the next life. */
	struct journal_kept kept;
	uint64_t last_rotate_cpu_ns, spare_within_ns;
	/* db_notify: an eventfd a compaction's thread adds to when it ends,
	 * and the loop's event on it (-1, NULL: polled at commits only). */
	int wake_fd;
	struct event *wake_ev;
	/* db_notify: the quiet rule's timer (db.c, QUIET_MS_DEFAULT), which
	 * compacts a journal that no commit has added to for a whole period,
	 * armed at a commit when not pending (quiet_armed): a timerfd and
	 * the loop's event on it (-1, NULL: no rule); commits counts frames
	 * written, quiet_seen is the count when the timer was armed,
	 * last_commit_ns the coarse clock at the last (with the rule only). */
	int quiet_fd;
	bool quiet_armed;
	struct event *quiet_ev;
	uint64_t commits, quiet_seen, last_commit_ns;
	uint64_t quiet_ms;		/* its period (db_open reads it) */
	uint64_t checkpoint_size;	/* the tdb file's, after its last write */
	/* The journals as db_open read them, until db_load_nodes: their
	 * bytes, and the last change of each key they hold. */
	struct journal_map jmap[JOURNALS];
	struct fold fold;
	/* The '#' records as db_load_nodes found them, sorted by key, for
	 * db_each and db_get until db_loaded_done (owned). */
	struct side_record *side;
	size_t nside;
	bool side_loaded;
};

static inline TDB_DATA key_of(const char *s)
{
	return (TDB_DATA){ .dptr = (unsigned char *)s, .dsize = strlen(s) };
}

/* load.c: the '#' records the load found (v, n owned from now on), sorted
 * for db_get; forgetting them (db_loaded_done, db_close). */
void keep_side_records(struct db *db, struct side_record *v, size_t n);
void drop_side_records(struct db *db);
/* load.c: read both journals into db->fold (0, or -1 logged: damaged);
 * forget them once loaded; remove journals left beside a new file. */
int read_journals(struct db *db);
void drop_journal_reads(struct db *db);
void remove_stale_journals(struct db *db);

#endif
