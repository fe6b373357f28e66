/* The watch engine: registration, matching by path, event delivery. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * uthash out of memory (HASH_NONFATAL_OOM, Makefile): a table that cannot
 * be allocated leaves the item out and says so here; one that cannot grow
 * stays as it is, only slower.  Every key comparison is counted, so a
 * test can bound the work a request does (watch_compares).
 */
static bool table_oom;
static unsigned long key_compares;
static unsigned long path_lookups;	/* of by_path, by a change */

static int count_cmp(const void *a, const void *b, size_t len)
{
	key_compares++;
	return memcmp(a, b, len);
}

#define uthash_nonfatal_oom(obj) (table_oom = true)
#define HASH_KEYCMP(a, b, n) count_cmp(a, b, n)
/* Guests choose the paths and tokens: keyed (keyed_hash.h). */
#define HASH_FUNCTION KEYED_HASH_FUNCTION

#include <uthash.h>
#include <utlist.h>

#include "log/log.h"
#include "permissions/permissions.h"
#include "protocol/wire.h"
#include "schema/schema.h"
#include "store/keyed_hash.h"
#include "store/path.h"
#include "watches/watch.h"

struct watch {
	struct watch *prev, *next;		/* in watcher.watches */
	struct watch *bprev, *bnext;		/* in its bucket */
	struct watch *cnext;			/* in watcher.coalesced */
	UT_hash_handle kh;			/* in watcher.by_key */
	bool coalesced;
	struct watcher *owner;
	struct watch_bucket *bucket;
	int depth;				/* -1: no limit */
	size_t strip;				/* relative watches: home + '/' */
	const char *token;			/* in path[], after the path */
	char path[];				/* "<path>\0<token>\0": the key
						 * of by_key, without the last
						 * NUL */
};

/* The watches on one path. */
struct watch_bucket {
	UT_hash_handle hh;
	struct watch *watches;			/* utlist via bprev/bnext */
	unsigned int depth;			/* path_depth of path */
	/* Between watch_removing and watch_fire_removed: whether a node
	 * is about to go at path, and its permissions and its parent's
	 * (references held). */
	bool gone;
	struct perms *gone_perms, *gone_parent_perms;
	char path[];
};

/* How many watches sit strictly below a path. */
struct watch_count {
	UT_hash_handle hh;
	unsigned long n;
	char path[];
};

/* An event queued on a watcher's connection, until its bytes are sent. */
struct queued_event {
	UT_hash_handle hh;			/* in watcher.queued */
	struct queued_event *next;		/* the next one queued */
	int64_t end;				/* where it ends in the stream
						 * of the connection's output */
	char payload[];				/* "<path>\0<token>\0" */
};

#define PATH_BUF (PATH_ABS_MAX + 64)

void watch_registry_init(struct watch_registry *reg)
{
	memset(reg, 0, sizeof(*reg));
}

static void bucket_ungone(struct watch_bucket *b);

/*
 * The filter has 32 to 64 bits for each watched path (each bucket), so
 * that about one lookup in 32 to 64 of an unwatched path passes it; it is
 * rebuilt at that size whenever the paths outgrow it, or more have gone
 * than are left.
 */
#define FILTER_BITS_MIN 4096
#define FILTER_BITS_PER_PATH 32

static void filter_set(uint64_t *f, size_t mask, uint32_t hash)
{
	size_t bit = hash & mask;

	f[bit / 64] |= UINT64_C(1) << (bit % 64);
}

/* Whether a path of that hash may be watched. */
static bool filter_may(const struct watch_registry *reg, uint32_t hash)
{
	size_t bit = hash & reg->filter_mask;

	return !reg->filter ||
	       (reg->filter[bit / 64] >> (bit % 64)) & 1;
}

/* The filter made anew for the paths there are, at their size; the old
 * one kept (still true, only looser) when there is no memory for it. */
static void filter_rebuild(struct watch_registry *reg)
{
	size_t paths = HASH_COUNT(reg->by_path), bits = FILTER_BITS_MIN;
	uint64_t *f;

	while (bits / FILTER_BITS_PER_PATH < paths && bits < SIZE_MAX / 2)
		bits *= 2;
	f = calloc(bits / 64, sizeof(*f));
	if (!f)
		return;
	/* Chain by chain of the table rather than down its one list of
	 * every path: the chains' cache misses overlap, the list's wait
	 * for one another. */
	if (reg->by_path) {
		const UT_hash_table *tbl = reg->by_path->hh.tbl;

		for (unsigned int i = 0; i < tbl->num_buckets; i++)
			for (const UT_hash_handle *hh = tbl->buckets[i].hh_head;
			     hh; hh = hh->hh_next)
				filter_set(f, bits - 1, hh->hashv);
	}
	free(reg->filter);
	reg->filter = f;
	reg->filter_mask = bits - 1;
	reg->filter_stale = 0;
}

static void filter_added(struct watch_registry *reg, uint32_t hash)
{
	if (!reg->filter ||
	    HASH_COUNT(reg->by_path) >
		    (reg->filter_mask + 1) / FILTER_BITS_PER_PATH)
		filter_rebuild(reg);
	if (reg->filter)
		filter_set(reg->filter, reg->filter_mask, hash);
}

static void filter_removed(struct watch_registry *reg)
{
	if (++reg->filter_stale > HASH_COUNT(reg->by_path) &&
	    reg->filter_stale > FILTER_BITS_MIN / FILTER_BITS_PER_PATH)
		filter_rebuild(reg);
}

void watch_registry_destroy(struct watch_registry *reg)
{
	struct watch_bucket *b, *btmp;
	struct watch_count *c, *ctmp;

	HASH_ITER(hh, reg->by_path, b, btmp) {
		bucket_ungone(b);
		HASH_DELETE(hh, reg->by_path, b);
		free(b);
	}
	HASH_ITER(hh, reg->below, c, ctmp) {
		HASH_DELETE(hh, reg->below, c);
		free(c);
	}
	free(reg->filter);
	reg->filter = NULL;
}

void watcher_init(struct watcher *wr, struct conn *c)
{
	memset(wr, 0, sizeof(*wr));
	wr->conn = c;
}

static struct watch_bucket *bucket_find(const struct watch_registry *reg,
					const char *path, size_t len)
{
	struct watch_bucket *b;

	HASH_FIND(hh, reg->by_path, path, len, b);
	return b;
}

static struct watch_count *count_find(const struct watch_registry *reg,
				      const char *path, size_t len)
{
	struct watch_count *c;

	HASH_FIND(hh, reg->below, path, len, c);
	return c;
}

/* Count one watch less below each strict ancestor of path. */
static void below_dec(struct watch_registry *reg, const char *path,
		      unsigned int levels)
{
	size_t len = strlen(path);

	while (levels-- && (len = path_parent_len_n(path, len))) {
		struct watch_count *c = count_find(reg, path, len);

		if (c && --c->n == 0) {
			HASH_DELETE(hh, reg->below, c);
			free(c);
		}
	}
}

/* Count one watch more below each strict ancestor of path. */
static int below_inc(struct watch_registry *reg, const char *path)
{
	size_t len = strlen(path);
	unsigned int done = 0;

	if (path_is_special(path))
		return 0;
	while ((len = path_parent_len_n(path, len))) {
		struct watch_count *c = count_find(reg, path, len);

		if (!c) {
			c = calloc(1, sizeof(*c) + len + 1);
			if (c) {
				memcpy(c->path, path, len);
				table_oom = false;
				HASH_ADD_KEYPTR(hh, reg->below, c->path, len,
						c);
				if (table_oom) {
					free(c);
					c = NULL;
				}
			}
			if (!c) {
				below_dec(reg, path, done);
				return ENOMEM;
			}
		}
		c->n++;
		done++;
	}
	return 0;
}

unsigned long watch_compares(void)
{
	return key_compares;
}

unsigned long watch_path_lookups(void)
{
	return path_lookups;
}

unsigned int watch_longest_chain(const struct watch_registry *reg)
{
	const UT_hash_table *tbl;
	unsigned int most = 0;

	if (!reg->by_path)
		return 0;
	tbl = reg->by_path->hh.tbl;
	for (unsigned int i = 0; i < tbl->num_buckets; i++)
		if (tbl->buckets[i].count > most)
			most = tbl->buckets[i].count;
	return most;
}

/* What a watch costs its domain (memory quota). */
static size_t watch_bytes(const struct watch *w)
{
	return sizeof(*w) + strlen(w->path) + strlen(w->token) + 2;
}

/* The key of w in its watcher's by_key: path, NUL, token. */
static size_t key_len(const struct watch *w)
{
	return (size_t)(w->token - w->path) + strlen(w->token);
}

/* The bucket of path, made if there is none; NULL without memory. */
static struct watch_bucket *bucket_get(struct watch_registry *reg,
				       const char *path, size_t len)
{
	struct watch_bucket *b = bucket_find(reg, path, len);

	if (b)
		return b;
	b = calloc(1, sizeof(*b) + len + 1);
	if (!b)
		return NULL;
	memcpy(b->path, path, len + 1);
	b->depth = path_is_special(path) ? 0 : path_depth(path);
	table_oom = false;
	HASH_ADD_KEYPTR(hh, reg->by_path, b->path, len, b);
	if (table_oom) {
		free(b);
		return NULL;
	}
	filter_added(reg, b->hh.hashv);
	return b;
}

/* Forget what watch_removing kept for b. */
static void bucket_ungone(struct watch_bucket *b)
{
	if (b->gone_perms)
		perms_unref(b->gone_perms);
	if (b->gone_parent_perms)
		perms_unref(b->gone_parent_perms);
	b->gone = false;
	b->gone_perms = b->gone_parent_perms = NULL;
}

/* Drop b from the registry once it holds no watch. */
static void bucket_put(struct watch_registry *reg, struct watch_bucket *b)
{
	if (!b->watches) {
		bucket_ungone(b);
		HASH_DELETE(hh, reg->by_path, b);
		free(b);
		filter_removed(reg);
	}
}

struct watch *watch_add(struct watch_registry *reg, struct watcher *wr,
			const char *path, size_t strip, const char *token,
			int depth)
{
	size_t len = strlen(path), tlen = strlen(token);
	struct watch_bucket *b;
	struct watch *w, *dup;

	w = calloc(1, sizeof(*w) + len + 1 + tlen + 1);
	if (!w)
		goto nomem;
	memcpy(w->path, path, len + 1);
	memcpy(w->path + len + 1, token, tlen + 1);
	w->token = w->path + len + 1;
	HASH_FIND(kh, wr->by_key, w->path, key_len(w), dup);
	if (dup) {
		free(w);
		errno = EEXIST;
		return NULL;
	}
	w->owner = wr;
	w->depth = depth;
	w->strip = strip;
	b = bucket_get(reg, path, len);
	if (!b)
		goto nomem;
	if (below_inc(reg, path)) {
		bucket_put(reg, b);
		goto nomem;
	}
	table_oom = false;
	HASH_ADD_KEYPTR(kh, wr->by_key, w->path, key_len(w), w);
	if (table_oom) {
		if (!path_is_special(path))
			below_dec(reg, path, UINT_MAX);
		bucket_put(reg, b);
		goto nomem;
	}
	w->bucket = b;
	DL_APPEND2(b->watches, w, bprev, bnext);
	DL_APPEND(wr->watches, w);
	wr->count++;
	wr->bytes += watch_bytes(w);
	reg->count++;
	return w;

nomem:
	free(w);
	errno = ENOMEM;
	return NULL;
}

static void watch_free(struct watch_registry *reg, struct watch *w)
{
	struct watcher *wr = w->owner;
	struct watch_bucket *b = w->bucket;

	DL_DELETE2(b->watches, w, bprev, bnext);
	bucket_put(reg, b);
	if (!path_is_special(w->path))
		below_dec(reg, w->path, UINT_MAX);
	HASH_DELETE(kh, wr->by_key, w);
	DL_DELETE(wr->watches, w);
	if (w->coalesced)
		LL_DELETE2(wr->coalesced, w, cnext);
	wr->count--;
	wr->bytes -= watch_bytes(w);
	reg->count--;
	free(w);
}

int watch_remove(struct watch_registry *reg, struct watcher *wr,
		 const char *path, const char *token)
{
	size_t plen = strlen(path), tlen = strlen(token), len = plen + 1 + tlen;
	char stack[512], *key = len <= sizeof(stack) ? stack : malloc(len);
	struct watch *w;

	if (!key)
		return ENOMEM;
	memcpy(key, path, plen + 1);
	memcpy(key + plen + 1, token, tlen);
	HASH_FIND(kh, wr->by_key, key, len, w);
	if (key != stack)
		free(key);
	if (!w)
		return ENOENT;
	watch_free(reg, w);
	return 0;
}

/* Forget the queued events sent since (all of them when all). */
static void forget_sent(struct watcher *wr, bool all)
{
	const struct conn *c = wr->conn;
	struct queued_event *q;
	int64_t sent = 0;

	if (!wr->queued_head)
		return;
	/* Signed: a restore queues bytes out_total does not count.  (A
	 * closed connection may have no queue left: all is all.) */
	if (!all)
		sent = (int64_t)c->out_total -
		       (int64_t)evbuffer_get_length(c->out);
	while ((q = wr->queued_head) && (all || q->end <= sent)) {
		wr->queued_head = q->next;
		HASH_DELETE(hh, wr->queued, q);
		free(q);
	}
	if (!wr->queued_head)
		wr->queued_tail = NULL;
}

void watcher_clear(struct watch_registry *reg, struct watcher *wr)
{
	while (wr->watches)
		watch_free(reg, wr->watches);
	forget_sent(wr, true);
}

/* Remember an event just queued (no memory: it is only not deduplicated). */
static void note_queued(struct watcher *wr, const char *payload, size_t len)
{
	struct queued_event *q = malloc(sizeof(*q) + len);

	if (!q)
		return;
	memcpy(q->payload, payload, len);
	q->end = (int64_t)wr->conn->out_total;
	q->next = NULL;
	table_oom = false;
	HASH_ADD_KEYPTR(hh, wr->queued, q->payload, len, q);
	if (table_oom) {
		free(q);
		return;
	}
	if (wr->queued_tail)
		wr->queued_tail->next = q;
	else
		wr->queued_head = q;
	wr->queued_tail = q;
}

/* Queue "<path>\0<token>\0" on w's connection, or hold it back. */
static void send_event(struct watch *w, const char *path)
{
	struct conn *c = w->owner->conn;
	char buf[XENSTORE_PAYLOAD_MAX];
	size_t plen, tlen;
	uint64_t before;

	if (c->closing)
		return;
	if (w->coalesced)
		return;		/* one event for the watch path will follow */
	if (evbuffer_get_length(c->out) > WATCH_QUEUE_MAX) {
		w->coalesced = true;
		LL_PREPEND2(w->owner->coalesced, w, cnext);
		return;
	}
	/* A relative watch sees paths relative to its home. */
	if (w->strip && strlen(path) >= w->strip)
		path += w->strip;
	plen = strlen(path) + 1;
	tlen = strlen(w->token) + 1;
	if (plen + tlen > sizeof(buf)) {
		log_warn("connection %lu: watch event for %s too long, dropped",
			 c->id, path);
		return;
	}
	memcpy(buf, path, plen);
	memcpy(buf + plen, w->token, tlen);
	if (path[0] == '@') {		/* special events: always */
		conn_send(c, XS_WATCH_EVENT, 0, 0, buf, plen + tlen);
		return;
	}
	forget_sent(w->owner, false);
	if (w->owner->queued) {
		struct queued_event *q;

		HASH_FIND(hh, w->owner->queued, buf, plen + tlen, q);
		if (q)
			return;	/* the same event is still queued */
	}
	before = c->out_total;
	conn_send(c, XS_WATCH_EVENT, 0, 0, buf, plen + tlen);
	if (c->out_total != before)
		note_queued(w->owner, buf, plen + tlen);
}

void watch_fire_initial(struct watch *w)
{
	send_event(w, w->path);
}

void watcher_drained(struct watcher *wr)
{
	struct watch *list = wr->coalesced, *w, *tmp;

	wr->coalesced = NULL;
	LL_FOREACH_SAFE2(list, w, tmp, cnext) {
		w->coalesced = false;
		send_event(w, w->path);
	}
}

static bool may_read(const struct perms *p, const struct who *who)
{
	return p && (perms_access(p, who) & PERM_READ);
}

static bool permitted(const struct watch *w, const struct perms *perms,
		      const struct perms *old_perms,
		      const struct perms *parent_perms)
{
	const struct who *who = &w->owner->conn->who;

	return who->privileged || may_read(perms, who) ||
	       may_read(old_perms, who) || may_read(parent_perms, who);
}

void watch_fire_changed(struct watch_registry *reg, const char *path,
			const struct perms *perms, const struct perms *old_perms,
			const struct perms *parent_perms)
{
	unsigned int depth = path_depth(path);
	size_t len = strlen(path);

	/* Special nodes change only through SET_PERMS, which tells nobody:
	 * their watches are for domain events. */
	if (!reg->by_path || path_is_special(path))
		return;
	/* The path itself, then each ancestor up to "/". */
	for (;;) {
		uint32_t hash = keyed_hash(path, len);
		struct watch_bucket *b = NULL;
		struct watch *w;

		if (filter_may(reg, hash)) {
			path_lookups++;
			HASH_FIND_BYHASHVALUE(hh, reg->by_path, path, len,
					      hash, b);
		}
		if (b) {
			DL_FOREACH2(b->watches, w, bnext) {
				if (w->depth >= 0 &&
				    depth - b->depth > (unsigned int)w->depth)
					continue;
				if (permitted(w, perms, old_perms, parent_perms))
					send_event(w, path);
			}
		}
		if (len == 1)
			break;
		len = path_parent_len_n(path, len);
	}
}

/* Whether the watched path of b lies strictly below path (len bytes). */
static bool bucket_below(const struct watch_bucket *b, const char *path,
			 size_t len)
{
	return !path_is_special(b->path) && !strncmp(b->path, path, len) &&
	       (len == 1 || b->path[len] == '/') && b->path[len] != '\0';
}

void watch_removing(struct watch_registry *reg, const char *path,
		    watch_perms_fn *perms_of, void *arg)
{
	size_t len = strlen(path);
	struct watch_bucket *b, *tmp;

	if (path_is_special(path) || !count_find(reg, path, len))
		return;
	HASH_ITER(hh, reg->by_path, b, tmp) {
		struct perms *p = NULL, *pp = NULL;

		if (!bucket_below(b, path, len))
			continue;
		bucket_ungone(b);
		if (perms_of(b->path, &p, &pp, arg)) {
			b->gone = true;
			b->gone_perms = p ? perms_ref(p) : NULL;
			b->gone_parent_perms = pp ? perms_ref(pp) : NULL;
		}
	}
}

void watch_fire_removed(struct watch_registry *reg, const char *path,
			const struct perms *perms,
			const struct perms *parent_perms)
{
	size_t len = strlen(path);
	struct watch_bucket *b, *tmp;
	struct watch *w;

	if (path_is_special(path))
		return;
	watch_fire_changed(reg, path, perms, NULL, parent_perms);
	if (!count_find(reg, path, len))
		return;
	/* Watches below the removed node learn that their path is gone:
	 * filtered by the permissions of the node that was there and of
	 * its parent (as upstream's XSA-115 fix), or, for a path that
	 * never existed, by the removed node's. */
	HASH_ITER(hh, reg->by_path, b, tmp) {
		const struct perms *p = perms, *pp = parent_perms;

		if (!bucket_below(b, path, len))
			continue;
		if (b->gone)
			p = b->gone_perms, pp = b->gone_parent_perms;
		DL_FOREACH2(b->watches, w, bnext)
			if (permitted(w, p, NULL, pp))
				send_event(w, w->path);
		bucket_ungone(b);
	}
}

void watch_fire_special(struct watch_registry *reg, const char *name,
			unsigned int domid, const struct perms *perms)
{
	char one[64];
	struct watch_bucket *b;
	struct watch *w;

	snprintf(one, sizeof(one), "%s/%u", name, domid);
	b = bucket_find(reg, name, strlen(name));
	if (b) {
		DL_FOREACH2(b->watches, w, bnext)
			if (permitted(w, perms, NULL, NULL))
				send_event(w, w->depth >= 1 ? one : name);
	}
	b = bucket_find(reg, one, strlen(one));
	if (b) {
		DL_FOREACH2(b->watches, w, bnext)
			if (permitted(w, perms, NULL, NULL))
				send_event(w, one);
	}
}

void watcher_save(const struct watcher *wr, struct writer *out)
{
	const struct watch *w;

	schema_write_watch_count(out, wr->count);
	DL_FOREACH(wr->watches, w) {
		struct schema_watch sw = {
			.path = w->path, .token = w->token,
			.strip = (uint32_t)w->strip, .depth = (int32_t)w->depth,
			.held = w->coalesced,
		};

		schema_write_watch(out, &sw);
	}
}

struct load {
	struct watch_registry *reg;
	struct watcher *wr;
	bool fire;
};

static int load_one(const struct schema_watch *sw, void *arg)
{
	struct load *l = arg;
	struct watch *w = watch_add(l->reg, l->wr, sw->path, sw->strip,
				    sw->token, sw->depth);

	if (!w)
		return -1;
	if (l->fire || sw->held)
		watch_fire_initial(w);
	return 0;
}

int watcher_read(struct watch_registry *reg, struct watcher *wr,
		 struct reader *r, bool fire)
{
	struct load l = { reg, wr, fire };

	return schema_read_watches(r, load_one, &l);
}

int watcher_load(struct watch_registry *reg, struct watcher *wr,
		 const void *data, size_t len, bool fire)
{
	struct load l = { reg, wr, fire };

	return schema_decode_watches(data, len, load_one, &l);
}
