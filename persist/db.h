/*
 * db: the files that make every committed change survive a crash.
 *
 * Each node is one record keyed by its path (value: its creation
 * generation, permissions and value; children are found by path on load,
 * ordered by creation).  Other state a restart needs (the domain table,
 * each guest's watches, the quotas) lives in records whose keys start
 * with '#', written by their owners through db_put.  Every key and
 * layout, and the version of the files, is schema/schema.h's.
 *
 * Changes collect in memory and db_commit, which the server calls at the
 * end of every loop turn before a reply leaves, appends them to a journal
 * beside the tdb file as one checksummed frame (persist/journal.h): a
 * crash leaves the old or the new state, never half of one.  The tdb file is the checkpoint: a thread
 * applies the journal to it when the journal has grown, a clean stop and
 * a live update before they leave (db_checkpoint), and a restart reads
 * the file with the journals on top.  After the start-up the daemon reads
 * nothing back.  The files live on tmpfs (they must not outlive a reboot,
 * when every domain is gone), so nothing is fsynced
 * (docs/durability.md).
 */
#ifndef XS_DB_H
#define XS_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "record/record.h"
#include "store/store.h"

struct db;

/*
 * Open path, creating it when missing or empty.  *restorable: it holds a
 * saved state to load.  NULL (after a log message) when it cannot be
 * opened or is not ours: the caller exits rather than overwrite it.
 * Nothing is written until db_commit, which the server calls at the end
 * of every loop turn (server/turn.c), whatever made the changes.
 */
struct db *db_open(const char *path, bool *restorable);
/* Commit what is pending and close; once the start-up is over
 * (db_loaded_done), db_checkpoint first. */
void db_close(struct db *db);
const char *db_path(const struct db *db);

/*
 * Load every saved node into s (fresh from store_init), parents before
 * children, siblings in creation order.  0, or -1 after a log message
 * naming what is wrong: s may then hold part of the tree and must be
 * destroyed.
 */
int db_load_nodes(struct db *db, struct store *s);

/*
 * Call fn for every record whose key starts with prefix ('#...'), with
 * the rest of the key.  Stops at and returns fn's first nonzero result.
 * The records are the ones db_load_nodes found (kept from its pass over
 * the files, so a restart reads them once), whatever was written since;
 * there are none before it and after db_loaded_done.
 */
int db_each(struct db *db, const char *prefix,
	    int (*fn)(const char *name, const void *data, size_t len,
		      void *arg),
	    void *arg);

/* The start-up is over: forget the '#' records the load kept; from now
 * on compactions may run (never before the daemon has forked). */
void db_loaded_done(struct db *db);

/*
 * From now on the end of a compaction is learnt at once, on base, rather
 * than at the next commit: a live journal that passed its limit meanwhile
 * is then set aside and compacted too, also when no client writes again,
 * so that an idle daemon holds journals of at most about the limit.  0,
 * or -1 with errno (then as before).
 */
int db_notify(struct db *db, struct event_base *base);

/*
 * The record under key ('#...') as db_load_nodes found it (as for
 * db_each), given to fn: fn's result, or 0 when there is no such record.
 * One lookup, not a traversal.
 */
int db_get(struct db *db, const char *key,
	   int (*fn)(const void *data, size_t len, void *arg), void *arg);

/*
 * The format of the file as opened: SCHEMA_DB_VERSION, or an older one
 * the schema still reads (its records are decoded as that version's).
 * Once the records that differ were put again in this version's encoding,
 * db_upgraded marks the file as this version, with the pending commit;
 * 0, or -1 (logged) without memory.
 */
uint32_t db_version(const struct db *db);
int db_upgraded(struct db *db);

/* Follow every change of s from now on; with save_all, first save the
 * nodes it holds (a new file). */
void db_follow(struct db *db, struct store *s, bool save_all);

/*
 * A change that cannot be recorded for want of memory does not turn
 * persistence off: the commit that follows writes the whole state from
 * memory as a new checkpoint (a rewrite), which supersedes the journals.
 * Its nodes come from the store db_follow follows, its '#' records from
 * the savers: each puts again (db_put, db_put_encoded) every record its
 * owner keeps, as its live state has it now, once each.  db_add_saver: 0,
 * or -1 when DB_SAVERS are registered already.  A saver is removed before
 * its owner is freed.
 */
int db_add_saver(struct db *db, void (*fn)(void *arg), void *arg);
void db_remove_saver(struct db *db, void (*fn)(void *arg), void *arg);

/* Set or delete one '#' record, as part of the pending commit. */
void db_put(struct db *db, const char *key, struct evbuffer *value);
void db_delete(struct db *db, const char *key);
/*
 * db_put of what encode writes for obj: 0, or -1 (logged) when there was
 * no memory to encode it (the commit then writes the whole state anew,
 * above).  A NULL db does nothing.
 */
int db_put_encoded(struct db *db, const char *key,
		   void (*encode)(const void *obj, struct writer *w),
		   const void *obj);

/*
 * Make every change since the last call durable: one frame appended to
 * the journal, or a rewrite when a change could not be recorded (above);
 * nothing at all when nothing changed (and nothing before db_follow:
 * those changes wait for the first commit after it).  0, or -1 when a
 * file could not be written, or a rewrite failed too (logged): the files
 * are then emptied,
 * so no restart loads a state older than the one clients were told
 * about, and persistence stays off.  A NULL db (persistence off) does
 * nothing.
 */
int db_commit(struct db *db);

/* Changes wait for db_commit (false for a NULL db): replies that follow
 * no pending change may leave before the next commit. */
bool db_pending(const struct db *db);

/*
 * db_commit, then wait for a running compaction and apply what is left
 * of the journals to the tdb file, which then holds the whole state on
 * its own (live update runs this before the new program starts; an
 * older daemon can read the file).  0, or -1 as db_commit.
 */
int db_checkpoint(struct db *db);

#endif
