/*
 * The tdb file: its records are schema/schema.h's.
 *
 * The file is opened without locking (TDB_NOLOCK): the pid file and the
 * socket already keep a second daemon away, and every lock is a system
 * call on the path of each commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tdb.h>

#include "log/log.h"
#include "persist/db_impl.h"
#include "schema/schema.h"

/* Hash chains.  Every tdb transaction copies the whole table (4 bytes a
 * chain), so a larger one slows every commit; a smaller one makes the
 * chains a write walks longer (15 records each at a million nodes).
 * Measured on tmpfs, one record a commit: 22 us with 65521 chains, 63 us
 * with 262147, 43 us with 16381 at a million nodes (docs/durability.md). */
#define DB_HASH_SIZE 65521

static void db_fail(struct db *db, const char *what)
{
	if (db->failed)
		return;
	db->failed = true;
	log_error("database %s: %s failed: %s; persistence is off until the "
		  "daemon restarts, and the file is emptied so a restart does "
		  "not load an older state", db->path, what,
		  tdb_errorstr(db->tdb));
	if (db->in_txn)
		tdb_transaction_cancel(db->tdb);
	db->in_txn = false;
	/* Unmapped before it shrinks. */
	tdb_close(db->tdb);
	db->tdb = NULL;
	if (truncate(db->path, 0) != 0)
		log_error("cannot empty %s: %s", db->path, strerror(errno));
}

/* Open the pending transaction on the first change. */
static bool begin(struct db *db)
{
	if (db->failed)
		return false;
	if (db->in_txn)
		return true;
	if (tdb_transaction_start(db->tdb) != 0) {
		db_fail(db, "starting a transaction");
		return false;
	}
	db->in_txn = true;
	if (db->commit_ev)
		event_active(db->commit_ev, EV_TIMEOUT, 0);
	return true;
}

static void store_record(struct db *db, TDB_DATA key, const void *p,
			 size_t len)
{
	TDB_DATA val = { .dptr = (unsigned char *)p, .dsize = len };

	if (begin(db) && tdb_store(db->tdb, key, val, TDB_REPLACE) != 0)
		db_fail(db, "writing a record");
}

static void delete_record(struct db *db, TDB_DATA key)
{
	if (begin(db) && tdb_delete(db->tdb, key) != 0 &&
	    tdb_error(db->tdb) != TDB_ERR_NOEXIST)
		db_fail(db, "deleting a record");
}

void db_put(struct db *db, const char *key, struct evbuffer *value)
{
	size_t len = evbuffer_get_length(value);
	unsigned char *p = evbuffer_pullup(value, -1);

	if (!db)
		return;
	if (!p && len) {
		db_fail(db, "copying a record (out of memory)");
		return;
	}
	store_record(db, key_of(key), p, len);
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
	else
		log_error("database: no memory to save %s", key);
	if (b)
		evbuffer_free(b);
	return ok ? 0 : -1;
}

int db_get(struct db *db, const char *key,
	   int (*fn)(const void *data, size_t len, void *arg), void *arg)
{
	TDB_DATA v;
	int rc;

	if (!db || db->failed)
		return 0;
	v = tdb_fetch(db->tdb, key_of(key));
	if (!v.dptr)
		return 0;
	rc = fn(v.dptr, v.dsize, arg);
	free(v.dptr);
	return rc;
}

void db_delete(struct db *db, const char *key)
{
	if (db)
		delete_record(db, key_of(key));
}

int db_commit(struct db *db)
{
	if (!db || !db->in_txn)
		return db && db->failed ? -1 : 0;
	db->in_txn = false;
	if (tdb_transaction_commit(db->tdb) != 0) {
		db_fail(db, "committing");
		return -1;
	}
	return 0;
}

/* ---- nodes ---- */

static void node_changed(const struct node *n, void *arg)
{
	struct db *db = arg;
	struct schema_node rec = {
		.born = n->born, .nperms = n->perms->n, .perms = n->perms->e,
		.value = n->value, .value_len = n->value_len,
	};
	struct writer w;

	if (db->failed)
		return;
	evbuffer_drain(db->scratch, evbuffer_get_length(db->scratch));
	wr_init(&w, db->scratch);
	schema_write_node(&w, &rec);
	if (!wr_ok(&w)) {
		db_fail(db, "encoding a node (out of memory)");
		return;
	}
	db_put(db, n->path, db->scratch);
}

static void node_removed(const struct node *n, void *arg)
{
	struct db *db = arg;

	delete_record(db, key_of(n->path));
}

void db_follow(struct db *db, struct store *s, bool save_all)
{
	/* From now on, read and write with pread and pwrite: with the file
	 * mapped, tdb unmaps and maps it again at every transaction start
	 * and faults each page in anew, which costs more than the copies.
	 * The load before this read through the mapping, which is faster
	 * for a traversal of every record. */
	tdb_add_flags(db->tdb, TDB_NOMMAP);
	db->observer.changed = node_changed;
	db->observer.removed = node_removed;
	db->observer.arg = db;
	s->observer = &db->observer;
	if (save_all) {
		store_each(s, node_changed, db);
		db_commit(db);
	}
}

/* ---- the file ---- */

/* Whether the file's format record (if *present) is ours, of this
 * version; false after a log message naming what it is instead. */
static bool format_ok(struct db *db, bool *present)
{
	TDB_DATA v = tdb_fetch(db->tdb, key_of(SCHEMA_KEY_FORMAT));
	enum schema_format f;
	uint32_t version = 0;

	*present = v.dptr != NULL;
	if (!v.dptr) {
		if (tdb_error(db->tdb) == TDB_ERR_NOEXIST)
			return true;
		f = SCHEMA_FOREIGN;
	} else {
		f = schema_decode_format(v.dptr, v.dsize, &version);
		free(v.dptr);
		db->version = version;
	}
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

static int write_format(struct db *db)
{
	return put_format(db) != 0 ? -1 : db_commit(db);
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

static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	db_commit(arg);
}

struct db *db_open(const char *path, struct event_base *base,
		   bool *restorable)
{
	struct db *db = calloc(1, sizeof(*db));
	struct stat sb;
	bool present, fresh;

	*restorable = false;
	if (!db || !(db->path = strdup(path)) ||
	    !(db->scratch = evbuffer_new()) ||
	    !(db->commit_ev = event_new(base, -1, 0, commit_cb, db))) {
		log_error("database %s: out of memory", path);
		goto fail;
	}
	fresh = stat(path, &sb) != 0 || sb.st_size == 0;
	if (fresh)
		unlink(path);	/* an empty file is not a tdb yet */
	/* Never O_CREAT over an existing file: tdb would replace one it
	 * cannot read with a new, empty database. */
	errno = 0;
	db->tdb = tdb_open(path, DB_HASH_SIZE,
			   TDB_NOLOCK | TDB_NOSYNC | TDB_INCOMPATIBLE_HASH,
			   O_RDWR | O_CLOEXEC | (fresh ? O_CREAT : 0), 0600);
	if (!db->tdb) {
		log_error("cannot open the database %s: %s%s", path,
			  errno ? strerror(errno) : "not a valid tdb file",
			  fresh ? "" : " (corrupt? move it away to start "
			  "empty)");
		goto fail;
	}
	if (!format_ok(db, &present))
		goto fail;
	if (!present && !fresh) {
		TDB_DATA k = tdb_firstkey(db->tdb);

		if (k.dptr) {
			free(k.dptr);
			log_error("%s holds records but is not a xenstored "
				  "database; move it away to start empty", path);
			goto fail;
		}
	}
	if (!present) {
		if (tdb_wipe_all(db->tdb) != 0 || write_format(db) != 0) {
			log_error("cannot initialise the database %s", path);
			goto fail;
		}
	} else {
		*restorable = true;
	}
	return db;

fail:
	if (db) {
		if (db->tdb)
			tdb_close(db->tdb);
		if (db->scratch)
			evbuffer_free(db->scratch);
		if (db->commit_ev)
			event_free(db->commit_ev);
		free(db->path);
		free(db);
	}
	return NULL;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	db_commit(db);
	drop_side_records(db);
	if (db->tdb)
		tdb_close(db->tdb);
	evbuffer_free(db->scratch);
	event_free(db->commit_ev);
	free(db->path);
	free(db);
}

const char *db_path(const struct db *db)
{
	return db->path;
}
