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

#include "log/log.h"
#include "persist/db.h"
#include "record/record.h"
#include "protocol/wire.h"
#include "store/path.h"

#define DB_MAGIC "xenstored-db"
#define DB_VERSION 1
/* Hash chains.  Every tdb transaction copies the whole table (4 bytes a
 * chain), so a larger one slows every commit; a smaller one makes the
 * chains a write walks longer (15 records each at a million nodes).
 * Measured on tmpfs, one record a commit: 22 us with 65521 chains, 63 us
 * with 262147, 43 us with 16381 at a million nodes (docs/durability.md). */
#define DB_HASH_SIZE 65521

struct db {
	struct tdb_context *tdb;
	char *path;
	bool in_txn;		/* a tdb transaction holds uncommitted changes */
	bool failed;		/* a write failed: persistence is off */
	struct evbuffer *scratch;	/* node encoding, reused */
	struct event *commit_ev;	/* zero-timeout: commit what is left */
	struct store_observer observer;
	/* The '#' records as db_load_nodes found them, for db_each until
	 * db_loaded_done (owned). */
	struct side_record *side;
	size_t nside;
	bool side_loaded;
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
		struct node *n, *tmp;

		HASH_ITER(hh, s->nodes, n, tmp)
			node_changed(n, db);
		db_commit(db);
	}
}

/* One node record, read back. */
struct saved_node {
	uint64_t born;
	const char *path;	/* in the load's arena; the value follows
				 * its NUL */
	struct perms *perms;	/* one reference */
	uint32_t value_len;
};

/* Where the saved nodes' bytes go: chunks that never move, freed at once
 * when the load ends (one allocation per node would cost a third of it). */
struct arena {
	struct arena *next;
	size_t used, cap;
	char bytes[];
};

#define ARENA_CHUNK (1024 * 1024)

static char *arena_alloc(struct arena **a, size_t len)
{
	struct arena *c = *a;

	if (!c || c->cap - c->used < len) {
		size_t cap = len > ARENA_CHUNK ? len : ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = *a;
		c->used = 0;
		c->cap = cap;
		*a = c;
	}
	c->used += len;
	return c->bytes + c->used - len;
}

static void arena_free(struct arena *a)
{
	while (a) {
		struct arena *next = a->next;

		free(a);
		a = next;
	}
}

/* A '#' record as the load found it (db_each). */
struct side_record {
	char *key;		/* owned; the data follows its NUL */
	const unsigned char *data;
	size_t len;
};

struct load_state {
	struct saved_node *v;
	size_t n, cap;
	struct arena *arena;
	/* Siblings mostly share their permissions: the last list decoded,
	 * and its encoding, to share it instead of making another. */
	struct perms *last_perms;
	unsigned char *last_raw;
	size_t last_raw_len, last_raw_cap;
	struct side_record *side;
	size_t nside, side_cap;
	const char *bad;	/* why the file is unusable */
	char bad_key[64];
};

static bool grow(void *vp, size_t *cap, size_t n, size_t size)
{
	void **v = vp;
	size_t c;
	void *p;

	if (n < *cap)
		return true;
	c = *cap ? 2 * *cap : 64;
	p = realloc(*v, c * size);
	if (!p)
		return false;
	*v = p;
	*cap = c;
	return true;
}

/* The permissions encoded at raw (np entries, checked to be there). */
static struct perms *decode_perms(struct load_state *st,
				  const unsigned char *raw, uint32_t np)
{
	size_t len = (size_t)np * 8;
	struct perms *perms;
	struct reader r;

	if (st->last_perms && st->last_raw_len == len &&
	    memcmp(st->last_raw, raw, len) == 0)
		return perms_ref(st->last_perms);
	perms = perms_alloc(np);
	if (!perms)
		return NULL;
	rd_init(&r, raw, len);
	for (uint32_t i = 0; i < np; i++) {
		perms->e[i].domid = rd_u32(&r);
		perms->e[i].access = rd_u32(&r);
		if (perms->e[i].domid >= STORE_DOMIDS ||
		    perms->e[i].access & ~(uint32_t)(PERM_READ | PERM_WRITE |
						     PERM_IGNORE)) {
			perms_unref(perms);
			return NULL;
		}
	}
	if (st->last_raw_cap < len) {
		unsigned char *b = realloc(st->last_raw, len);

		if (!b)
			return perms;	/* just not shared */
		st->last_raw = b;
		st->last_raw_cap = len;
	}
	memcpy(st->last_raw, raw, len);
	st->last_raw_len = len;
	if (st->last_perms)
		perms_unref(st->last_perms);
	st->last_perms = perms_ref(perms);
	return perms;
}

/* Decode a node record; false if it is malformed or memory ran out. */
static bool decode_node(struct load_state *st, const TDB_DATA *key,
			const TDB_DATA *data, struct saved_node *out)
{
	struct reader r;
	const unsigned char *raw;
	uint32_t np, vlen;
	const void *value;
	char *path;

	rd_init(&r, data->dptr, data->dsize);
	out->born = rd_u64(&r);
	np = rd_u32(&r);
	if (!rd_ok(&r) || np == 0 || np > r.left / 8)
		return false;
	raw = r.p;
	r.p += (size_t)np * 8;
	r.left -= (size_t)np * 8;
	value = rd_bytes(&r, &vlen);
	if (!rd_done(&r) || out->born == 0 || vlen > XENSTORE_PAYLOAD_MAX ||
	    key->dsize == 0 || key->dsize > PATH_ABS_MAX + 64 ||
	    memchr(key->dptr, '\0', key->dsize))
		return false;
	path = arena_alloc(&st->arena, key->dsize + 1 + vlen);
	out->perms = path ? decode_perms(st, raw, np) : NULL;
	if (!out->perms)
		return false;
	memcpy(path, key->dptr, key->dsize);
	path[key->dsize] = '\0';
	memcpy(path + key->dsize + 1, value, vlen);
	out->path = path;
	out->value_len = vlen;
	return true;
}

static bool keep_side_record(struct load_state *st, const TDB_DATA *key,
			     const TDB_DATA *data)
{
	struct side_record *sr;
	char *k;

	if (!grow(&st->side, &st->side_cap, st->nside, sizeof(*st->side)) ||
	    !(k = malloc(key->dsize + 1 + data->dsize)))
		return false;
	memcpy(k, key->dptr, key->dsize);
	k[key->dsize] = '\0';
	memcpy(k + key->dsize + 1, data->dptr, data->dsize);
	sr = &st->side[st->nside++];
	sr->key = k;
	sr->data = (unsigned char *)k + key->dsize + 1;
	sr->len = data->dsize;
	return true;
}

static int collect_node(TDB_DATA key, TDB_DATA data, void *arg)
{
	struct load_state *st = arg;

	if (key.dsize && key.dptr[0] == '#') {
		if (keep_side_record(st, &key, &data))
			return 0;
		st->bad = "out of memory";
		return -1;
	}
	if (!grow(&st->v, &st->cap, st->n, sizeof(*st->v))) {
		st->bad = "out of memory";
		return -1;
	}
	if (!decode_node(st, &key, &data, &st->v[st->n])) {
		st->bad = "a malformed node record (or no memory for it)";
		snprintf(st->bad_key, sizeof(st->bad_key), "%.*s",
			 (int)(key.dsize < 48 ? key.dsize : 48),
			 (const char *)key.dptr);
		return -1;
	}
	st->n++;
	return 0;
}

/*
 * Sort v by creation (every parent before its children, siblings in the
 * order DIRECTORY lists them): a radix sort, a byte of born a pass, as
 * many passes as the largest needs (qsort took a tenth of a restart).
 * false without memory for the copy.
 */
static bool sort_by_born(struct saved_node **v, size_t n)
{
	struct saved_node *src = *v, *dst, *other;
	uint64_t max = 0;

	for (size_t i = 0; i < n; i++)
		if (src[i].born > max)
			max = src[i].born;
	other = dst = malloc((n ? n : 1) * sizeof(*dst));
	if (!dst)
		return false;
	for (unsigned int shift = 0; shift < 64 && max >> shift; shift += 8) {
		size_t at[257] = { 0 };
		struct saved_node *t;

		for (size_t i = 0; i < n; i++)
			at[((src[i].born >> shift) & 0xff) + 1]++;
		for (unsigned int b = 0; b < 256; b++)
			at[b + 1] += at[b];
		for (size_t i = 0; i < n; i++)
			dst[at[(src[i].born >> shift) & 0xff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	free(src == other ? *v : other);
	*v = src;
	return true;
}

/*
 * tdb_check steps over the recovery area without measuring it, so a file
 * cut inside that area (the end of the file, and most of a small one)
 * would pass, then fail at some later commit.  Measure it by tdb's file
 * layout (tdb_private.h, the same since tdb 1.2): the header holds the
 * area's offset at byte 44, and the area's record header its length at
 * byte 4 of 24.
 */
static bool recovery_area_whole(struct db *db)
{
	int fd = tdb_fd(db->tdb);
	uint32_t start, len;
	struct stat sb;

	if (fstat(fd, &sb) != 0 || pread(fd, &start, 4, 44) != 4)
		return false;
	if (start == 0)
		return true;
	return pread(fd, &len, 4, (off_t)start + 4) == 4 &&
	       (uint64_t)start + 24 + len <= (uint64_t)sb.st_size;
}

static void drop_side_records(struct db *db)
{
	for (size_t i = 0; i < db->nside; i++)
		free(db->side[i].key);
	free(db->side);
	db->side = NULL;
	db->nside = 0;
	db->side_loaded = false;
}

int db_load_nodes(struct db *db, struct store *s)
{
	struct load_state st = { 0 };
	struct node *parent = NULL;
	int rc = -1;

	/* tdb_check reads the file in order, which is faster than following
	 * the hash chains, and proves it whole: a truncated or damaged file
	 * fails here, not at some later write. */
	if (tdb_check(db->tdb, collect_node, &st) != 0 && !st.bad)
		st.bad = "tdb's check of the file failed (truncated or damaged)";
	if (!st.bad && !recovery_area_whole(db))
		st.bad = "the file is shorter than its recovery area (truncated)";
	if (st.bad) {
		log_error("database %s is unusable: %s%s%s", db->path, st.bad,
			  st.bad_key[0] ? " at " : "", st.bad_key);
		goto out;
	}
	if (!sort_by_born(&st.v, st.n)) {
		log_error("database %s cannot be loaded: out of memory",
			  db->path);
		goto out;
	}
	for (size_t i = 0; i < st.n; i++) {
		struct saved_node *v = &st.v[i];

		if (i && v->born == st.v[i - 1].born) {
			log_error("database %s is unusable: two nodes share "
				  "generation %llu (%s)", db->path,
				  (unsigned long long)v->born, v->path);
			goto out;
		}
		if (!store_restore(s, v->path, v->perms,
				   v->path + strlen(v->path) + 1,
				   v->value_len, v->born, 0, 0, &parent)) {
			log_error("database %s is unusable: node %s %s",
				  db->path, v->path, errno == ENOMEM
				  ? "cannot be loaded: out of memory"
				  : "has no parent or a bad path");
			goto out;
		}
	}
	drop_side_records(db);
	db->side = st.side;
	db->nside = st.nside;
	db->side_loaded = true;
	st.side = NULL;
	st.nside = 0;
	rc = 0;
out:
	for (size_t i = 0; i < st.n; i++)
		perms_unref(st.v[i].perms);
	free(st.v);
	arena_free(st.arena);
	if (st.last_perms)
		perms_unref(st.last_perms);
	free(st.last_raw);
	for (size_t i = 0; i < st.nside; i++)
		free(st.side[i].key);
	free(st.side);
	return rc;
}

struct each_state {
	const char *prefix;
	size_t plen;
	int (*fn)(const char *name, const void *data, size_t len, void *arg);
	void *arg;
	int rc;
};

static int each_one(struct each_state *st, const void *key, size_t klen,
		    const void *data, size_t len)
{
	char name[128];

	if (klen < st->plen || klen - st->plen >= sizeof(name) ||
	    memcmp(key, st->prefix, st->plen) != 0)
		return 0;
	memcpy(name, (const char *)key + st->plen, klen - st->plen);
	name[klen - st->plen] = '\0';
	st->rc = st->fn(name, data, len, st->arg);
	return st->rc ? -1 : 0;
}

static int each_record(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data,
		       void *arg)
{
	(void)tdb;
	return each_one(arg, key.dptr, key.dsize, data.dptr, data.dsize);
}

int db_each(struct db *db, const char *prefix,
	    int (*fn)(const char *name, const void *data, size_t len,
		      void *arg),
	    void *arg)
{
	struct each_state st = { prefix, strlen(prefix), fn, arg, 0 };

	if (db->failed)
		return -1;
	if (db->side_loaded) {
		for (size_t i = 0; i < db->nside; i++) {
			const struct side_record *sr = &db->side[i];

			if (each_one(&st, sr->key, strlen(sr->key), sr->data,
				     sr->len) != 0)
				break;
		}
		return st.rc;
	}
	if (tdb_traverse_read(db->tdb, each_record, &st) < 0 && !st.rc) {
		log_error("database %s: cannot read it: %s", db->path,
			  tdb_errorstr(db->tdb));
		return -1;
	}
	return st.rc;
}

void db_loaded_done(struct db *db)
{
	if (db)
		drop_side_records(db);
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
