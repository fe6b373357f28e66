/*
 * Reading the database back at start-up: one pass over the checkpoint
 * (ckpt_read, which also refuses a damaged file) with the journals on top
 * (the last change of each key they hold, read by db_open, takes the
 * place of the file's record), each node put into the store 16 nodes
 * after it is read (read ahead, below).  A checkpoint holds its nodes
 * parents first (written from a walk of the tree, and merges add new
 * nodes in the order they were made), so nearly every node finds its
 * parent there already; the few that do not, and the nodes only the
 * journals hold, wait in an arena, sorted by creation, for the end of
 * the pass.  store_restore_done then puts in order of birth any children
 * that came out of it.  The '#' records are kept aside for db_each and
 * db_get until the start-up is over.  Nothing is written: a start that
 * fails leaves the files as they were.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log/log.h"
#include "persist/db_impl.h"
#include "schema/schema.h"

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

/*
 * The load reads nodes LOAD_AHEAD ahead of putting them into the store,
 * each named to store_prefetch as it is read: its slot in the path index,
 * at a random place in a table of tens of megabytes, is then in the cache
 * when its turn comes (one cache miss after another took a third of a
 * restart).  A node whose path and value do not fit a slot's bytes is
 * put in at once, after those ahead of it.
 */
#define LOAD_AHEAD 16
#define AHEAD_BYTES 240

struct ahead {
	uint64_t born;
	struct perms *perms;	/* one reference */
	uint32_t path_len, value_len;
	char bytes[AHEAD_BYTES];	/* the path, its NUL, the value */
};

struct load_state {
	struct store *s;
	const struct fold *journals;	/* newer than the file */
	unsigned char *taken;		/* [journals->count]: a journal's
					 * change already used in the file's
					 * pass, in place of its record */
	struct node *last;		/* the last node restored */
	struct saved_node *v;		/* nodes waiting for their parent */
	size_t n, cap;
	struct arena *arena;
	/* Siblings mostly share their permissions: the last list decoded,
	 * and its encoding, to share it instead of making another. */
	struct perms *last_perms;
	unsigned char *last_raw;
	size_t last_raw_len, last_raw_cap;
	struct side_record *side;
	size_t nside, side_cap;
	/* The nodes read but not restored yet (LOAD_AHEAD at most), oldest
	 * at ahead_first: each was named to store_prefetch when read. */
	struct ahead ahead[LOAD_AHEAD];
	unsigned int ahead_first, nahead;
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

/* The permissions of a decoded node: the last list decoded again when
 * they are the same bytes. */
static struct perms *decoded_perms(struct load_state *st,
				const struct schema_node *rec)
{
	size_t len = schema_node_perms_len(rec);
	struct perms *perms;

	if (st->last_perms && st->last_raw_len == len &&
	    memcmp(st->last_raw, rec->perms_raw, len) == 0)
		return perms_ref(st->last_perms);
	perms = perms_alloc(rec->nperms);
	if (!perms)
		return NULL;
	for (uint32_t i = 0; i < rec->nperms; i++)
		perms->e[i] = schema_node_perm(rec, i);
	if (st->last_raw_cap < len) {
		unsigned char *b = realloc(st->last_raw, len);

		if (!b)
			return perms;	/* just not shared */
		st->last_raw = b;
		st->last_raw_cap = len;
	}
	memcpy(st->last_raw, rec->perms_raw, len);
	st->last_raw_len = len;
	if (st->last_perms)
		perms_unref(st->last_perms);
	st->last_perms = perms_ref(perms);
	return perms;
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

/* Why the node at key (len bytes) makes the file unusable, by errno. */
static void node_unusable(struct load_state *st, const char *key, size_t len)
{
	st->bad = errno == ENOMEM
		? "out of memory"
		: "a malformed node record, a bad path, a path twice, "
		  "two nodes of one generation, or a change to a node "
		  "that no file made";
	snprintf(st->bad_key, sizeof(st->bad_key), "%.*s",
		 (int)(len < 48 ? len : 48), key);
}

/* A node (its path NUL-terminated, len bytes) into the store now when its
 * parent is there, else kept for the end of the pass: 0, or -1 with
 * st->bad set. */
static int restore_node(struct load_state *st, const char *path, size_t len,
			struct perms *perms, const void *value,
			uint32_t value_len, uint64_t born)
{
	struct saved_node *v;
	char *p;

	if (store_restore(st->s, path, perms, value, value_len, born,
			  &st->last))
		return 0;
	if (errno == ENOENT) {
		if (grow(&st->v, &st->cap, st->n, sizeof(*st->v)) &&
		    (p = arena_alloc(&st->arena, len + 1 + value_len))) {
			memcpy(p, path, len + 1);
			memcpy(p + len + 1, value, value_len);
			v = &st->v[st->n++];
			v->born = born;
			v->path = p;
			v->perms = perms_ref(perms);
			v->value_len = value_len;
			return 0;
		}
		errno = ENOMEM;
	}
	node_unusable(st, path, len);
	return -1;
}

/* The oldest node read ahead, into the store. */
static int restore_oldest(struct load_state *st)
{
	struct ahead *a = &st->ahead[st->ahead_first];
	int rc = restore_node(st, a->bytes, a->path_len, a->perms,
			      a->bytes + a->path_len + 1, a->value_len,
			      a->born);

	perms_unref(a->perms);
	st->ahead_first = (st->ahead_first + 1) % LOAD_AHEAD;
	st->nahead--;
	return rc;
}

/* Every node read ahead, into the store. */
static int restore_ahead(struct load_state *st)
{
	while (st->nahead)
		if (restore_oldest(st) != 0)
			return -1;
	return 0;
}

/* A node record, read ahead (or put in at once when it does not fit);
 * born: its birth when the record says "as before" (a journal's put),
 * 0 when nothing gave one. */
static int take_node(struct load_state *st, const TDB_DATA *key,
		     const TDB_DATA *data, uint64_t born)
{
	const char *k = (const char *)key->dptr;
	struct schema_node rec;
	struct perms *perms;
	struct ahead *a;
	char path[NODE_PATH_BUF];
	int rc;

	if (key->dsize >= sizeof(path) ||
	    !schema_decode_node(key->dptr, key->dsize, data->dptr,
				data->dsize, &rec)) {
		errno = EINVAL;
		node_unusable(st, k, key->dsize);
		return -1;
	}
	if (!rec.born)
		rec.born = born;	/* store_restore refuses a 0 */
	if (!(perms = decoded_perms(st, &rec))) {
		errno = ENOMEM;
		node_unusable(st, k, key->dsize);
		return -1;
	}
	if (key->dsize + 1 + rec.value_len > AHEAD_BYTES) {
		memcpy(path, k, key->dsize);
		path[key->dsize] = '\0';
		rc = restore_ahead(st);
		if (rc == 0)
			rc = restore_node(st, path, key->dsize, perms,
					  rec.value, rec.value_len, rec.born);
		perms_unref(perms);
		return rc;
	}
	if (st->nahead == LOAD_AHEAD && restore_oldest(st) != 0) {
		perms_unref(perms);
		return -1;
	}
	a = &st->ahead[(st->ahead_first + st->nahead++) % LOAD_AHEAD];
	a->born = rec.born;
	a->perms = perms;
	a->path_len = (uint32_t)key->dsize;
	a->value_len = rec.value_len;
	memcpy(a->bytes, k, key->dsize);
	a->bytes[key->dsize] = '\0';
	memcpy(a->bytes + key->dsize + 1, rec.value, rec.value_len);
	store_prefetch(st->s, a->bytes, key->dsize);
	return 0;
}

static int collect_record(struct load_state *st, TDB_DATA key,
			  TDB_DATA data, uint64_t born)
{
	if (schema_key_is_node(key.dptr, key.dsize))
		return take_node(st, &key, &data, born);	/* sets st->bad */
	if (keep_side_record(st, &key, &data))
		return 0;
	st->bad = "out of memory";
	return -1;
}

static int collect_checkpoint(const void *kp, size_t klen, const void *vp,
			      size_t vlen, void *arg)
{
	struct load_state *st = arg;
	TDB_DATA key = { (unsigned char *)kp, klen };
	TDB_DATA data = { (unsigned char *)vp, vlen };
	const struct fold_entry *e = fold_find(st->journals, kp, klen);
	uint64_t born = 0;

	/* A journal changed it since: its change is the one, here, so that
	 * the node still comes before its children; one "as before" keeps
	 * the birth the file gives. */
	if (e) {
		st->taken[e - st->journals->v] = 1;
		if (!e->c.put)
			return 0;
		born = fold_entry_born(e);
		if (!born)
			born = schema_record_born(kp, klen, vp, vlen);
		data = (TDB_DATA){ (unsigned char *)e->c.value,
				   e->c.value_len };
	}
	return collect_record(st, key, data, born);
}

/* Room for the file's nodes and the journals', made once. */
static int reserve(uint64_t nodes, void *arg)
{
	struct load_state *st = arg;

	if (store_reserve(st->s, nodes + st->journals->count) == 0)
		return 0;
	st->bad = "out of memory";
	return -1;
}

static const struct ckpt_block_ops make_room = { .counted = reserve };

/* What the journals put that the file's pass did not use. */
static int collect_journals(struct load_state *st)
{
	for (size_t i = 0; i < st->journals->count; i++) {
		const struct fold_entry *e = &st->journals->v[i];
		TDB_DATA k = { (unsigned char *)e->c.key, e->c.key_len };
		TDB_DATA v = { (unsigned char *)e->c.value, e->c.value_len };

		if (e->c.put && !st->taken[i] &&
		    collect_record(st, k, v, fold_entry_born(e)) != 0)
			return -1;
	}
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

int db_load_nodes(struct db *db, struct store *s)
{
	struct load_state st = { .s = s, .journals = &db->fold };
	char why[160];
	int rc = -1;

	st.taken = calloc(db->fold.count ? db->fold.count : 1, 1);
	if (!st.taken) {
		log_error("database %s cannot be loaded: out of memory",
			  db->path);
		goto out;
	}
	/* One pass, which proves the file whole too: a truncated or damaged
	 * file fails here, not at some later compaction. */
	if (ckpt_read_merging(db->tdb, db->file_version, collect_checkpoint,
			      &make_room, &st, why, sizeof(why)) != 0 &&
	    !st.bad)
		st.bad = why;
	if (!st.bad && !recovery_area_whole(db))
		st.bad = "the file is shorter than its recovery area (truncated)";
	if (!st.bad && collect_journals(&st) == 0)
		restore_ahead(&st);	/* both set st.bad */
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
	/* The nodes that waited: by creation, each parent comes first. */
	for (size_t i = 0; i < st.n; i++) {
		struct saved_node *v = &st.v[i];

		if (!store_restore(s, v->path, v->perms,
				   v->path + strlen(v->path) + 1,
				   v->value_len, v->born, &st.last)) {
			log_error("database %s is unusable: node %s %s",
				  db->path, v->path, errno == ENOMEM
				  ? "cannot be loaded: out of memory"
				  : "has no parent, a bad path, or is there "
				  "twice");
			goto out;
		}
	}
	if (store_restore_done(s) != 0) {
		log_error("database %s %s", db->path, errno == ENOMEM
			  ? "cannot be loaded: out of memory"
			  : "is unusable: two nodes share a generation");
		goto out;
	}
	keep_side_records(db, st.side, st.nside);
	st.side = NULL;
	st.nside = 0;
	rc = 0;
out:
	while (st.nahead--)
		perms_unref(st.ahead[st.ahead_first++ % LOAD_AHEAD].perms);
	for (size_t i = 0; i < st.n; i++)
		perms_unref(st.v[i].perms);
	free(st.v);
	free(st.taken);
	arena_free(st.arena);
	if (st.last_perms)
		perms_unref(st.last_perms);
	free(st.last_raw);
	for (size_t i = 0; i < st.nside; i++)
		free(st.side[i].key);
	free(st.side);
	return rc;
}

/* ---- the '#' records the load kept ---- */

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct side_record *)a)->key,
		      ((const struct side_record *)b)->key);
}

int db_get(struct db *db, const char *key,
	   int (*fn)(const void *data, size_t len, void *arg), void *arg)
{
	struct side_record k = { .key = (char *)key }, *sr;

	if (!db || db->failed || !db->side_loaded || !db->nside)
		return 0;
	sr = bsearch(&k, db->side, db->nside, sizeof(*db->side), by_key);
	return sr ? fn(sr->data, sr->len, arg) : 0;
}

int db_each(struct db *db, const char *prefix,
	    int (*fn)(const char *name, const void *data, size_t len,
		      void *arg),
	    void *arg)
{
	size_t plen = strlen(prefix);

	if (db->failed)
		return -1;
	for (size_t i = 0; db->side_loaded && i < db->nside; i++) {
		const struct side_record *sr = &db->side[i];
		int rc;

		if (strncmp(sr->key, prefix, plen) != 0)
			continue;
		if ((rc = fn(sr->key + plen, sr->data, sr->len, arg)) != 0)
			return rc;
	}
	return 0;
}

/* load.c's records, sorted for db_get. */
void keep_side_records(struct db *db, struct side_record *v, size_t n)
{
	drop_side_records(db);
	if (n)			/* v may be NULL then */
		qsort(v, n, sizeof(*v), by_key);
	db->side = v;
	db->nside = n;
	db->side_loaded = true;
}

void drop_side_records(struct db *db)
{
	for (size_t i = 0; i < db->nside; i++)
		free(db->side[i].key);
	free(db->side);
	db->side = NULL;
	db->nside = 0;
	db->side_loaded = false;
}

/* ---- the journals on top ---- */

/* Journals beside a new (or emptied) file belong to no database: the
 * one they followed was moved away, or persistence failed. */
void remove_stale_journals(struct db *db)
{
	for (int i = 0; i < JOURNALS; i++)
		if (unlink(db->jpath[i]) == 0)
			log_warn("database %s is new: removed %s, left from "
				 "another one", db->path, db->jpath[i]);
}

/* The journals hold the mark of the file's rewrite: the daemon died
 * after the rename that made it the state, before it removed them. */
static bool superseded(const struct db *db)
{
	const struct fold_entry *fe = fold_find(&db->fold,
						SCHEMA_KEY_SUPERSEDED,
						strlen(SCHEMA_KEY_SUPERSEDED));

	return db->rewrite_mark && fe && fe->c.put &&
	       schema_decode_mark(fe->c.value, fe->c.value_len) ==
	       db->rewrite_mark;
}

/* Older than the file, and replayed over it they would undo some of what
 * it holds: removed, unread. */
static void drop_superseded(struct db *db)
{
	drop_journal_reads(db);
	for (int i = 0; i < JOURNALS; i++) {
		if (db->jexists[i] && unlink(db->jpath[i]) == 0)
			log_warn("database %s: removed %s, older than the file "
				 "written whole from memory before the daemon "
				 "stopped", db->path, db->jpath[i]);
		db->jexists[i] = db->jfound[i] = false;
	}
	db->jwhole = 0;
}

/*
 * Read both journals, oldest first, into db->fold for the load: 0, or -1
 * after a log message when one is damaged (and nothing is changed).  A
 * torn tail is only logged here; the first commit cuts it off.
 */
int read_journals(struct db *db)
{
	for (int i = 0; i < JOURNALS; i++) {
		struct journal_scan s;
		const char *why;
		int rc = journal_fold_file(db->jpath[i], true, &db->jmap[i],
					   &db->fold, &s, &why);

		if (rc > 0)
			continue;
		if (rc < 0) {
			log_error("database %s: its journal %s is unusable: %s "
				  "(at byte %zu); the daemon does not start "
				  "rather than lose what it holds", db->path,
				  db->jpath[i], why, s.at);
			return -1;
		}
		db->jexists[i] = db->jfound[i] = true;
		if (i == JOURNAL_LIVE) {
			db->jwhole = s.whole;
			/* Written on with its own head (journal_open). */
			db->jout.version = s.version;
			db->jout.salt = s.salt;
		}
		if (s.state == JOURNAL_TORN)
			log_warn("database %s: journal %s: %s at byte %zu "
				 "(a commit the daemon died writing, never "
				 "acknowledged): it ends at byte %zu, after %zu "
				 "whole commits", db->path, db->jpath[i], s.why,
				 s.at, s.whole, s.frames);
	}
	if (superseded(db))
		drop_superseded(db);
	return 0;
}

void drop_journal_reads(struct db *db)
{
	fold_free(&db->fold);
	for (int i = 0; i < JOURNALS; i++)
		journal_unmap(&db->jmap[i]);
}
