/*
 * The tdb file.  Record layouts (persist/record.h encoding):
 *
 *   "#format"            "xenstored-db" version
 *   "/path", "@special"  u64 born, u32 n, n x (u32 domid, u32 access),
 *                        bytes value
 *   "#..."               whatever their owner wrote
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

#include "daemon/log.h"
#include "persist/db.h"
#include "persist/record.h"
#include "protocol/wire.h"
#include "store/path.h"

#define DB_MAGIC "xenstored-db"
#define DB_VERSION 1
/* Hash chains: about four records each with a million nodes.  Every tdb
 * transaction copies the whole table, so a larger one slows each commit
 * (measured: docs/benchmarks.md). */
#define DB_HASH_SIZE 262147

struct db {
	struct tdb_context *tdb;
	char *path;
	bool in_txn;		/* a tdb transaction holds uncommitted changes */
	bool failed;		/* a write failed: persistence is off */
	struct evbuffer *scratch;	/* node encoding, reused */
	struct event *commit_ev;	/* zero-timeout: commit what is left */
	struct store_observer observer;
};

static TDB_DATA key_of(const char *s)
{
	return (TDB_DATA){ .dptr = (unsigned char *)s, .dsize = strlen(s) };
}

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
	struct writer w;

	if (db->failed)
		return;
	evbuffer_drain(db->scratch, evbuffer_get_length(db->scratch));
	wr_init(&w, db->scratch);
	wr_u64(&w, n->born);
	wr_u32(&w, n->perms->n);
	for (unsigned int i = 0; i < n->perms->n; i++) {
		wr_u32(&w, n->perms->e[i].domid);
		wr_u32(&w, n->perms->e[i].access);
	}
	wr_bytes(&w, n->value, n->value_len);
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
	db->observer.changed = node_changed;
	db->observer.removed = node_removed;
	db->observer.arg = db;
	s->observer = &db->observer;
	if (save_all) {
		struct node *n, *tmp;

		HASH_ITER(hh, s->nodes, n, tmp)
			node_changed(n, db);
		db_commit(db);
	}
}

/* One node record, read back. */
struct saved_node {
	uint64_t born;
	char *path;		/* owned; the value follows its NUL */
	struct perms *perms;	/* owned reference */
	const char *value;	/* inside path's allocation */
	uint32_t value_len;
};

struct load_state {
	struct saved_node *v;
	size_t n, cap;
	const char *bad;	/* why the file is unusable */
	char bad_key[64];
};

/* Decode a node record; false if it is malformed. */
static bool decode_node(const TDB_DATA *key, const TDB_DATA *data,
			struct saved_node *out)
{
	struct reader r;
	uint32_t np, vlen;
	const void *value;
	struct perms *perms;

	rd_init(&r, data->dptr, data->dsize);
	out->born = rd_u64(&r);
	np = rd_u32(&r);
	if (!rd_ok(&r) || np == 0 || np > r.left / 8)
		return false;
	perms = perms_alloc(np);
	if (!perms)
		return false;
	for (uint32_t i = 0; i < np; i++) {
		perms->e[i].domid = rd_u32(&r);
		perms->e[i].access = rd_u32(&r);
		if (perms->e[i].domid >= STORE_DOMIDS ||
		    perms->e[i].access & ~(uint32_t)(PERM_READ | PERM_WRITE |
						     PERM_IGNORE))
			rd_fail(&r);
	}
	value = rd_bytes(&r, &vlen);
	if (!rd_done(&r) || out->born == 0 || vlen > XENSTORE_PAYLOAD_MAX ||
	    key->dsize == 0 || key->dsize > PATH_ABS_MAX + 64 ||
	    memchr(key->dptr, '\0', key->dsize)) {
		perms_unref(perms);
		return false;
	}
	out->path = malloc(key->dsize + 1 + vlen);
	if (!out->path) {
		perms_unref(perms);
		return false;
	}
	memcpy(out->path, key->dptr, key->dsize);
	out->path[key->dsize] = '\0';
	memcpy(out->path + key->dsize + 1, value, vlen);
	out->value = out->path + key->dsize + 1;
	out->value_len = vlen;
	out->perms = perms;
	return true;
}

static int collect_node(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data,
			void *arg)
{
	struct load_state *st = arg;

	(void)tdb;
	if (key.dsize && key.dptr[0] == '#')
		return 0;
	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 4096;
		struct saved_node *v = realloc(st->v, cap * sizeof(*v));

		if (!v) {
			st->bad = "out of memory";
			return -1;
		}
		st->v = v;
		st->cap = cap;
	}
	if (!decode_node(&key, &data, &st->v[st->n])) {
		st->bad = "a malformed node record";
		snprintf(st->bad_key, sizeof(st->bad_key), "%.*s",
			 (int)(key.dsize < 48 ? key.dsize : 48),
			 (const char *)key.dptr);
		return -1;
	}
	st->n++;
	return 0;
}

static int by_born(const void *a, const void *b)
{
	const struct saved_node *x = a, *y = b;

	return x->born < y->born ? -1 : x->born > y->born;
}

int db_load_nodes(struct db *db, struct store *s)
{
	struct load_state st = { 0 };
	int rc = -1;

	if (tdb_traverse_read(db->tdb, collect_node, &st) < 0 && !st.bad)
		st.bad = tdb_errorstr(db->tdb);
	if (st.bad) {
		log_error("database %s is unusable: %s%s%s", db->path, st.bad,
			  st.bad_key[0] ? " at " : "", st.bad_key);
		goto out;
	}
	/* Creation order: every parent before its children, siblings in
	 * the order DIRECTORY lists them. */
	qsort(st.v, st.n, sizeof(*st.v), by_born);
	for (size_t i = 0; i < st.n; i++) {
		struct saved_node *v = &st.v[i];

		if (i && v->born == st.v[i - 1].born) {
			log_error("database %s is unusable: two nodes share "
				  "generation %llu (%s)", db->path,
				  (unsigned long long)v->born, v->path);
			goto out;
		}
		if (!store_restore(s, v->path, v->perms, v->value,
				   v->value_len, v->born, 0, 0)) {
			log_error("database %s is unusable: node %s %s",
				  db->path, v->path, errno == ENOMEM
				  ? "cannot be loaded: out of memory"
				  : "has no parent or a bad path");
			goto out;
		}
	}
	rc = 0;
out:
	for (size_t i = 0; i < st.n; i++) {
		free(st.v[i].path);
		perms_unref(st.v[i].perms);
	}
	free(st.v);
	return rc;
}

struct each_state {
	const char *prefix;
	size_t plen;
	int (*fn)(const char *name, const void *data, size_t len, void *arg);
	void *arg;
	int rc;
};

static int each_record(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data,
		       void *arg)
{
	struct each_state *st = arg;
	char name[128];

	(void)tdb;
	if (key.dsize < st->plen || key.dsize - st->plen >= sizeof(name) ||
	    memcmp(key.dptr, st->prefix, st->plen) != 0)
		return 0;
	memcpy(name, key.dptr + st->plen, key.dsize - st->plen);
	name[key.dsize - st->plen] = '\0';
	st->rc = st->fn(name, data.dptr, data.dsize, st->arg);
	return st->rc ? -1 : 0;
}

int db_each(struct db *db, const char *prefix,
	    int (*fn)(const char *name, const void *data, size_t len,
		      void *arg),
	    void *arg)
{
	struct each_state st = { prefix, strlen(prefix), fn, arg, 0 };

	if (db->failed)
		return -1;
	if (tdb_traverse_read(db->tdb, each_record, &st) < 0 && !st.rc) {
		log_error("database %s: cannot read it: %s", db->path,
			  tdb_errorstr(db->tdb));
		return -1;
	}
	return st.rc;
}

/* ---- the file ---- */

static bool format_ok(struct db *db, bool *present)
{
	TDB_DATA v = tdb_fetch(db->tdb, key_of("#format"));
	struct reader r;
	bool ok;

	*present = v.dptr != NULL;
	if (!v.dptr)
		return tdb_error(db->tdb) == TDB_ERR_NOEXIST;
	rd_init(&r, v.dptr, v.dsize);
	ok = strcmp(rd_str(&r), DB_MAGIC) == 0 && rd_u32(&r) == DB_VERSION &&
	     rd_done(&r);
	free(v.dptr);
	return ok;
}

static void encode_format(const void *unused, struct writer *w)
{
	(void)unused;
	wr_str(w, DB_MAGIC);
	wr_u32(w, DB_VERSION);
}

static int write_format(struct db *db)
{
	if (db_put_encoded(db, "#format", encode_format, NULL) != 0)
		return -1;
	return db_commit(db);
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
	if (!format_ok(db, &present)) {
		log_error("%s is not a xenstored database of this version; "
			  "move it away to start empty", path);
		goto fail;
	}
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
