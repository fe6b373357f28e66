/* The persisted records: see schema.h, which describes each of them. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#ifdef HAVE_XXH3_DISPATCH
#define XXH_DISPATCH_DISABLE_REPLACE 1	/* by name below, not by macro */
#include <xxh_x86dispatch.h>
#endif

#include "protocol/wire.h"
#include "schema/schema.h"
#include "store/path.h"

/* The fewest bytes one item of a list takes: a count larger than what is
 * left cannot be true, and is refused before any loop runs. */
#define MIN_WATCH (5 + 5 + 4 + 4 + 1)
#define MIN_QUOTA (4 + 5 + 4)
#define MIN_QUEUES (4 + 4 + 4)

#define INPUT_MAX (WIRE_HDR_LEN + XENSTORE_PAYLOAD_MAX)

void schema_key_domain(char key[SCHEMA_KEY_MAX], unsigned int domid)
{
	snprintf(key, SCHEMA_KEY_MAX, SCHEMA_PREFIX_DOMAIN "%u", domid);
}

void schema_key_input(char key[SCHEMA_KEY_MAX], unsigned int domid)
{
	snprintf(key, SCHEMA_KEY_MAX, SCHEMA_PREFIX_INPUT "%u", domid);
}

void schema_key_watches(char key[SCHEMA_KEY_MAX], unsigned int domid)
{
	snprintf(key, SCHEMA_KEY_MAX, SCHEMA_PREFIX_WATCHES "%u", domid);
}

/* A u8 that holds a bool: 0 or 1, nothing else. */
static bool rd_bool(struct reader *r)
{
	uint8_t v = rd_u8(r);

	if (v > 1)
		rd_fail(r);
	return v == 1;
}

static bool rd_count(struct reader *r, uint32_t *n, size_t item_min)
{
	*n = rd_u32(r);
	if (rd_ok(r) && *n > r->left / item_min)
		rd_fail(r);
	if (!rd_ok(r))
		*n = 0;
	return rd_ok(r);
}

/* ---- versions ---- */

void schema_write_format(struct writer *w)
{
	wr_str(w, SCHEMA_DB_MAGIC);
	wr_u32(w, SCHEMA_DB_VERSION);
}

/* magic and a version: ours when from oldest to newest (the versions
 * this daemon reads). */
static enum schema_format read_magic(struct reader *r, const char *magic,
				     uint32_t oldest, uint32_t newest,
				     uint32_t *version)
{
	uint32_t v;

	if (strcmp(rd_str(r), magic) != 0)
		return SCHEMA_FOREIGN;
	v = rd_u32(r);
	if (!rd_ok(r))
		return SCHEMA_FOREIGN;
	*version = v;
	return v >= oldest && v <= newest ? SCHEMA_OURS : SCHEMA_OTHER_VERSION;
}

enum schema_format schema_decode_format(const void *p, size_t len,
					uint32_t *version)
{
	struct reader r;
	enum schema_format f;

	rd_init(&r, p, len);
	f = read_magic(&r, SCHEMA_DB_MAGIC, SCHEMA_DB_VERSION_OLDEST,
		       SCHEMA_DB_VERSION, version);
	/* Bytes after ours: some other program's idea of the record. */
	return f == SCHEMA_OURS && !rd_done(&r) ? SCHEMA_FOREIGN : f;
}

void schema_write_mark(struct writer *w, uint64_t mark)
{
	wr_u64(w, mark);
}

uint64_t schema_decode_mark(const void *p, size_t len)
{
	struct reader r;
	uint64_t mark;

	rd_init(&r, p, len);
	mark = rd_u64(&r);
	return rd_done(&r) ? mark : 0;
}

/* ---- nodes ---- */

/* The node's encoding at p (schema_node_len bytes), as wr_u64 etc.
 * would write it. */
static inline void node_bytes(unsigned char *p,
			      const struct schema_node *n)
{
	p = rec_put_u64(p, n->born);
	p = rec_put_u32(p, n->nperms);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* The entries are already their encoding: a node is written at
	 * every change of it. */
	_Static_assert(sizeof(struct perm) == 8 &&
		       offsetof(struct perm, access) == 4,
		       "struct perm is not (u32 domid, u32 access)");
	for (uint32_t i = 0; i < n->nperms; i++, p += 8)
		memcpy(p, &n->perms[i], 8);	/* one store, not a call */
#else
	for (uint32_t i = 0; i < n->nperms; i++) {
		p = rec_put_u32(p, n->perms[i].domid);
		p = rec_put_u32(p, n->perms[i].access);
	}
#endif
	p = rec_put_u32(p, n->value_len);
	if (n->value_len)
		memcpy(p, n->value, n->value_len);
}

/* The node by one wr_raw: a dozen small evbuffer_add calls would cost
 * more than the rest of it (a checkpoint encodes every node). */
void schema_write_node(struct writer *w, const struct schema_node *n)
{
	unsigned char small[512], *p = small;
	size_t len = schema_node_len(n);

	if (len > sizeof(small) && !(p = malloc(len))) {
		w->failed = true;
		return;
	}
	node_bytes(p, n);
	wr_raw(w, p, len);
	if (p != small)
		free(p);
}

uint64_t schema_record_born(const void *key, size_t key_len, const void *p,
			    size_t len)
{
	struct reader r;

	if (!schema_key_is_node(key, key_len))
		return 0;
	rd_init(&r, p, len);
	return rd_u64(&r);	/* 0 when short */
}

void schema_node_set_born(void *p, uint64_t born)
{
	rec_put_u64(p, born);
}

struct perm schema_node_perm(const struct schema_node *n, uint32_t i)
{
	struct reader r;
	struct perm e;

	rd_init(&r, (const unsigned char *)n->perms_raw + (size_t)i * 8, 8);
	e.domid = rd_u32(&r);
	e.access = rd_u32(&r);
	return e;
}

bool schema_decode_node(const void *key, size_t key_len, const void *p,
			size_t len, struct schema_node *n)
{
	struct reader r;

	if (!key_len || !schema_key_is_node(key, key_len) ||
	    key_len > PATH_ABS_MAX + 64 ||
	    memchr(key, '\0', key_len))
		return false;
	rd_init(&r, p, len);
	n->born = rd_u64(&r);
	n->nperms = rd_u32(&r);
	if (!rd_ok(&r) || n->nperms == 0 ||
	    n->nperms > r.left / 8)
		return false;
	n->perms = NULL;
	n->perms_raw = r.p;
	for (uint32_t i = 0; i < n->nperms; i++) {
		uint32_t domid = rd_u32(&r), access = rd_u32(&r);

		if (domid >= STORE_DOMIDS ||
		    access & ~(uint32_t)(PERM_READ | PERM_WRITE | PERM_IGNORE))
			return false;
	}
	n->value = rd_bytes(&r, &n->value_len);
	return rd_done(&r) && n->value_len <= XENSTORE_PAYLOAD_MAX;
}

/* ---- the checkpoint's node blocks ---- */

void schema_write_nodes_head(struct writer *w, uint32_t blocks,
			     uint64_t nodes)
{
	wr_u32(w, blocks);
	wr_u64(w, nodes);
}

bool schema_decode_nodes_head(const void *p, size_t len, uint32_t *blocks,
			      uint64_t *nodes)
{
	struct reader r;

	rd_init(&r, p, len);
	*blocks = rd_u32(&r);
	*nodes = rd_u64(&r);
	/* Every block holds a node at least. */
	return rd_done(&r) && *nodes >= *blocks;
}

void schema_key_block(char key[SCHEMA_KEY_MAX], uint32_t i)
{
	snprintf(key, SCHEMA_KEY_MAX, SCHEMA_PREFIX_BLOCK "%" PRIu32, i);
}

bool schema_key_is_block(const void *key, size_t len, uint32_t *i)
{
	const size_t plen = sizeof(SCHEMA_PREFIX_BLOCK) - 1;
	const char *k = key;
	uint64_t v = 0;

	if (len <= plen || len > plen + 10 || memcmp(k, SCHEMA_PREFIX_BLOCK, plen))
		return false;
	if (k[plen] == '0' && len > plen + 1)
		return false;		/* one spelling a number */
	for (size_t at = plen; at < len; at++) {
		if (k[at] < '0' || k[at] > '9')
			return false;
		v = v * 10 + (uint64_t)(k[at] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*i = (uint32_t)v;
	return true;
}

bool schema_read_v3_entry(struct reader *r, char *path, size_t *path_len,
			  const void **node, uint32_t *node_len)
{
	uint32_t shared = rd_u32(r), rest_len;
	const void *rest = rd_bytes(r, &rest_len);

	*node = rd_bytes(r, node_len);
	if (!rd_ok(r) || shared > *path_len || !rest_len ||
	    rest_len > SCHEMA_JOURNAL_KEY_MAX - shared ||
	    memchr(rest, '\0', rest_len))
		return false;
	memcpy(path + shared, rest, rest_len);
	*path_len = shared + rest_len;
	return schema_key_is_node(path, *path_len);
}

/* Room for more bytes at the end of b: false without memory. */
static bool bytes_room(struct schema_bytes *b, size_t more)
{
	size_t cap;
	unsigned char *p;

	if (b->cap - b->len >= more)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more)
		cap *= 2;
	if (!(p = realloc(b->p, cap)))
		return false;
	b->p = p;
	b->cap = cap;
	return true;
}

static bool bytes_add(struct schema_bytes *b, const void *p, size_t len)
{
	if (!bytes_room(b, len))
		return false;
	if (len)
		memcpy(b->p + b->len, p, len);
	b->len += len;
	return true;
}

/* A signed difference as an unsigned number, small either way. */
static uint64_t zigzag(uint64_t delta)
{
	return delta << 1 ^ (uint64_t)-(int64_t)(delta >> 63);
}

static uint64_t unzigzag(uint64_t v)
{
	return v >> 1 ^ (uint64_t)-(int64_t)(v & 1);
}

/* The most bytes of an entry's head but its permissions. */
#define HEAD_FIXED (5 * REC_VARINT_MAX)
/* An entry's permission, at most: a domid's varint and the access. */
#define HEAD_PERM (REC_VARINT_MAX + 1)

bool schema_block_add(struct schema_block *b, const char *path, size_t plen,
		      const struct schema_node *n)
{
	size_t perms_len = schema_node_perms_len(n), shared = 0, limit;
	bool same_perms = b->entries && perms_len == b->prev_perms.len &&
			  !memcmp(n->perms_raw, b->prev_perms.p, perms_len);
	unsigned char *h;

	if (!bytes_room(&b->head, HEAD_FIXED +
			(same_perms ? 0 : n->nperms * HEAD_PERM)) ||
	    !bytes_room(&b->names, plen) ||
	    !bytes_room(&b->values, n->value_len) ||
	    (!same_perms && !bytes_room(&b->prev_perms, perms_len)))
		return false;
	limit = plen - 1 < b->prev_len ? plen - 1 : b->prev_len;
	while (shared < limit && path[shared] == b->prev[shared])
		shared++;
	h = b->head.p + b->head.len;
	h = rec_put_varint(h, shared);
	h = rec_put_varint(h, plen - shared);
	h = rec_put_varint(h, zigzag(n->born - b->prev_born));
	if (same_perms) {
		*h++ = 0;
	} else {
		h = rec_put_varint(h, n->nperms);
		for (uint32_t i = 0; i < n->nperms; i++) {
			struct perm e = schema_node_perm(n, i);

			h = rec_put_varint(h, e.domid);
			*h++ = (unsigned char)e.access;
		}
		memcpy(b->prev_perms.p, n->perms_raw, perms_len);
		b->prev_perms.len = perms_len;
	}
	h = rec_put_varint(h, n->value_len);
	b->head.len = (size_t)(h - b->head.p);
	bytes_add(&b->names, path + shared, plen - shared);
	bytes_add(&b->values, n->value, n->value_len);
	memcpy(b->prev + shared, path + shared, plen - shared);
	b->prev_len = plen;
	b->prev_born = n->born;
	b->entries++;
	return true;
}

bool schema_block_finish(struct schema_block *b, const void **p,
			 size_t *len)
{
	unsigned char lens[2 * REC_VARINT_MAX], *e;

	e = rec_put_varint(lens, b->head.len);
	e = rec_put_varint(e, b->names.len);
	b->out.len = 0;
	if (!bytes_room(&b->out, (size_t)(e - lens) + schema_block_len(b)))
		return false;
	bytes_add(&b->out, lens, (size_t)(e - lens));
	bytes_add(&b->out, b->head.p, b->head.len);
	bytes_add(&b->out, b->names.p, b->names.len);
	bytes_add(&b->out, b->values.p, b->values.len);
	*p = b->out.p;
	*len = b->out.len;
	b->head.len = b->names.len = b->values.len = 0;
	b->prev_len = 0;
	b->prev_born = 0;
	b->prev_perms.len = 0;
	b->entries = 0;
	return true;
}

void schema_block_free(struct schema_block *b)
{
	free(b->head.p);
	free(b->names.p);
	free(b->values.p);
	free(b->out.p);
	free(b->prev_perms.p);
	memset(b, 0, sizeof(*b));
}

bool schema_block_open(struct schema_block_reader *br, const void *p,
		       size_t len)
{
	struct reader r;
	uint64_t head_len, names_len;
	const void *head, *names;

	rd_init(&r, p, len);
	head_len = rd_varint(&r);
	names_len = rd_varint(&r);
	if (!rd_ok(&r) || !head_len || head_len > r.left ||
	    names_len > r.left - head_len)
		return false;
	head = rd_take(&r, head_len);
	names = rd_take(&r, names_len);
	rd_init(&br->head, head, head_len);
	rd_init(&br->names, names, names_len);
	br->values = r;
	br->path_len = 0;
	br->born = 0;
	br->perms.len = 0;
	return true;
}

/* The entry's permissions from the head into br->perms: false when
 * malformed or out of memory (*oom). */
static bool read_perms(struct schema_block_reader *br, bool *oom)
{
	uint64_t n = rd_varint(&br->head);
	struct perm *e;

	if (!rd_ok(&br->head))
		return false;
	if (n == 0)
		return br->perms.len != 0;	/* as the entry before's */
	/* Each takes two bytes of the head at least. */
	if (n > br->head.left / 2)
		return false;
	br->perms.len = 0;
	if (!bytes_room(&br->perms, n * sizeof(*e))) {
		*oom = true;
		return false;
	}
	e = (struct perm *)(void *)br->perms.p;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t domid = rd_varint(&br->head);

		if (domid > UINT32_MAX)
			return false;
		e[i].domid = (uint32_t)domid;
		e[i].access = rd_u8(&br->head);
	}
	br->perms.len = n * sizeof(*e);
	return rd_ok(&br->head);
}

int schema_block_next(struct schema_block_reader *br, const void **rec,
		      size_t *rec_len)
{
	uint64_t shared, rest_len, value_len;
	const unsigned char *rest, *value;
	struct schema_node n;
	bool oom = false;

	if (!br->head.left)
		return br->names.left || br->values.left ? -1 : 0;
	shared = rd_varint(&br->head);
	rest_len = rd_varint(&br->head);
	br->born += unzigzag(rd_varint(&br->head));
	if (!rd_ok(&br->head) || !read_perms(br, &oom))
		return oom ? -2 : -1;
	value_len = rd_varint(&br->head);
	rest = rd_take(&br->names, rest_len);
	value = rd_take(&br->values, value_len);
	if (!rd_ok(&br->head) || !rest || !value || shared > br->path_len ||
	    !rest_len || rest_len > SCHEMA_JOURNAL_KEY_MAX - shared ||
	    memchr(rest, '\0', rest_len))
		return -1;
	memcpy(br->path + shared, rest, rest_len);
	br->path_len = shared + rest_len;
	if (!schema_key_is_node(br->path, br->path_len))
		return -1;
	n = (struct schema_node){
		.born = br->born,
		.nperms = (uint32_t)(br->perms.len / sizeof(struct perm)),
		.perms = (const struct perm *)(const void *)br->perms.p,
		.value = value, .value_len = (uint32_t)value_len,
	};
	*rec_len = schema_node_len(&n);
	if (!bytes_room(&br->rec, *rec_len))
		return -2;
	node_bytes(br->rec.p, &n);
	*rec = br->rec.p;
	return 1;
}

void schema_block_reader_free(struct schema_block_reader *br)
{
	free(br->perms.p);
	free(br->rec.p);
	br->perms = br->rec = (struct schema_bytes){ 0 };
}

/* ---- domains ---- */

void schema_write_domain(struct writer *w, const struct schema_domain *d)
{
	wr_u32(w, d->domid);
	wr_u64(w, d->gfn);
	wr_u32(w, d->port);
	wr_u32(w, d->features);
	wr_u32(w, d->target);
	wr_u8(w, d->introduced);
	wr_u8(w, d->shutdown_seen);
}

bool schema_decode_domain(const void *p, size_t len, struct schema_domain *d)
{
	struct reader r;

	rd_init(&r, p, len);
	d->domid = rd_u32(&r);
	d->gfn = rd_u64(&r);
	d->port = rd_u32(&r);
	d->features = rd_u32(&r);
	d->target = rd_u32(&r);
	d->introduced = rd_bool(&r);
	d->shutdown_seen = rd_bool(&r);
	return rd_done(&r);
}

void schema_write_input(struct writer *w, uint32_t end,
			struct evbuffer *bytes)
{
	wr_u32(w, end);
	wr_evbuffer(w, bytes);
}

bool schema_decode_input(const void *p, size_t len, struct schema_input *in)
{
	struct xsd_sockmsg hdr;
	struct reader r;

	rd_init(&r, p, len);
	in->end = rd_u32(&r);
	in->bytes = rd_bytes(&r, &in->len);
	if (!rd_done(&r) || in->len == 0 || in->len >= INPUT_MAX)
		return false;
	/* The start of one request: never its end, nor more. */
	if (in->len >= WIRE_HDR_LEN) {
		wire_decode_header(in->bytes, &hdr);
		if (hdr.len > XENSTORE_PAYLOAD_MAX ||
		    in->len >= WIRE_HDR_LEN + hdr.len)
			return false;
	}
	return true;
}

/* ---- watch lists ---- */

void schema_write_watch_count(struct writer *w, uint32_t n)
{
	wr_u32(w, n);
}

void schema_write_watch(struct writer *w, const struct schema_watch *sw)
{
	wr_str(w, sw->path);
	wr_str(w, sw->token);
	wr_u32(w, sw->strip);
	wr_u32(w, (uint32_t)sw->depth);
	wr_u8(w, sw->held);
}

static bool read_watch(struct reader *r, struct schema_watch *sw)
{
	sw->path = rd_str(r);
	sw->token = rd_str(r);
	sw->strip = rd_u32(r);
	sw->depth = (int32_t)rd_u32(r);
	sw->held = rd_bool(r);
	if (rd_ok(r) && (sw->strip > strlen(sw->path) || sw->depth < -1 ||
			 !(path_is_special(sw->path) ||
			   path_is_valid(sw->path))))
		rd_fail(r);
	return rd_ok(r);
}

int schema_read_watches(struct reader *r,
			int (*fn)(const struct schema_watch *sw, void *arg),
			void *arg)
{
	struct schema_watch sw;
	uint32_t n;

	if (!rd_count(r, &n, MIN_WATCH))
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (!read_watch(r, &sw) || fn(&sw, arg) != 0)
			return -1;
	return 0;
}

int schema_decode_watches(const void *p, size_t len,
			  int (*fn)(const struct schema_watch *sw, void *arg),
			  void *arg)
{
	struct reader r;

	rd_init(&r, p, len);
	return schema_read_watches(&r, fn, arg) == 0 && rd_done(&r) ? 0 : -1;
}

/* ---- quotas ---- */

void schema_write_quotas_head(struct writer *w, uint32_t soft_memory,
			      uint32_t n)
{
	wr_u32(w, soft_memory);
	wr_u32(w, n);
}

void schema_write_quota(struct writer *w, const struct schema_quota *q)
{
	wr_u32(w, q->domid);
	wr_str(w, q->name);
	wr_u32(w, q->value);
}

static bool read_quota(struct reader *r, struct schema_quota *q)
{
	q->domid = rd_u32(r);
	q->name = rd_str(r);
	q->value = rd_u32(r);
	if (rd_ok(r) && (!*q->name || (q->domid != SCHEMA_QUOTA_GLOBAL &&
				       q->domid >= STORE_DOMIDS)))
		rd_fail(r);
	return rd_ok(r);
}

/* Version 1's kinds, in its order: a fact of that format, never to change
 * with the daemon's own list. */
static const char *const v1_quotas[] = {
	"nodes", "watches", "transactions", "outstanding", "transaction-nodes",
	"memory", "node-size", "path-max", "permissions",
};
#define V1_KINDS (sizeof(v1_quotas) / sizeof(v1_quotas[0]))

static int decode_quotas_v1(const void *p, size_t len, uint32_t *soft_memory,
			    int (*fn)(const struct schema_quota *q, void *arg),
			    void *arg)
{
	struct schema_quota q = { .domid = SCHEMA_QUOTA_GLOBAL };
	struct reader r;
	uint32_t n;

	rd_init(&r, p, len);
	if (rd_u32(&r) != V1_KINDS)
		return -1;
	for (size_t k = 0; k < V1_KINDS; k++) {
		q.name = v1_quotas[k];
		q.value = rd_u32(&r);
		if (!rd_ok(&r) || (fn && fn(&q, arg) != 0))
			return -1;
	}
	*soft_memory = rd_u32(&r);
	if (!rd_count(&r, &n, 4 + 4 + 4 * V1_KINDS))
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t set;

		q.domid = rd_u32(&r);
		set = rd_u32(&r);
		if (rd_ok(&r) && (q.domid >= STORE_DOMIDS || set >> V1_KINDS))
			rd_fail(&r);
		for (size_t k = 0; k < V1_KINDS; k++) {
			q.name = v1_quotas[k];
			q.value = rd_u32(&r);
			if (!rd_ok(&r))
				return -1;
			if ((set & (1u << k)) && fn && fn(&q, arg) != 0)
				return -1;
		}
	}
	return rd_done(&r) ? 0 : -1;
}

int schema_decode_quotas(const void *p, size_t len, uint32_t version,
			 uint32_t *soft_memory,
			 int (*fn)(const struct schema_quota *q, void *arg),
			 void *arg)
{
	struct schema_quota q;
	struct reader r;
	uint32_t n;

	if (version == 1)
		return decode_quotas_v1(p, len, soft_memory, fn, arg);
	rd_init(&r, p, len);
	*soft_memory = rd_u32(&r);
	if (!rd_count(&r, &n, MIN_QUOTA))
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (!read_quota(&r, &q) || (fn && fn(&q, arg) != 0))
			return -1;
	return rd_done(&r) ? 0 : -1;
}

/* ---- the journal ---- */

#define CHANGE_PUT 1
#define CHANGE_DELETE 2

size_t schema_journal_head_at(unsigned char *p, uint32_t version,
			      uint64_t salt)
{
	unsigned char *q = rec_put_u32(p, sizeof(SCHEMA_JOURNAL_MAGIC));

	memcpy(q, SCHEMA_JOURNAL_MAGIC, sizeof(SCHEMA_JOURNAL_MAGIC));
	q = rec_put_u32(q + sizeof(SCHEMA_JOURNAL_MAGIC), version);
	if (version >= SCHEMA_JOURNAL_VERSION_SALTED)
		q = rec_put_u64(q, salt);
	return (size_t)(q - p);
}

void schema_write_journal_head(struct writer *w, uint32_t version,
			       uint64_t salt)
{
	unsigned char head[SCHEMA_JOURNAL_HEAD_MAX];

	wr_raw(w, head, schema_journal_head_at(head, version, salt));
}

size_t schema_journal_head_len_of(uint32_t version)
{
	return 4 + sizeof(SCHEMA_JOURNAL_MAGIC) + 4 +
	       (version >= SCHEMA_JOURNAL_VERSION_SALTED ? 8 : 0);
}

size_t schema_journal_head_len(void)
{
	return schema_journal_head_len_of(SCHEMA_JOURNAL_VERSION);
}

enum schema_format schema_read_journal_head(struct reader *r,
					    uint32_t *version, uint64_t *salt,
					    bool *cut)
{
	/* Our head up to its version, byte for byte, to tell a head cut
	 * short (inside the version too, any version's) from another. */
	unsigned char ours[4 + sizeof(SCHEMA_JOURNAL_MAGIC)];
	enum schema_format f;

	for (int i = 0; i < 4; i++)
		ours[i] = (unsigned char)(sizeof(SCHEMA_JOURNAL_MAGIC) >> (8 * i));
	memcpy(ours + 4, SCHEMA_JOURNAL_MAGIC, sizeof(SCHEMA_JOURNAL_MAGIC));
	*salt = 0;
	*cut = r->left < schema_journal_head_len_of(1) &&
	       memcmp(r->p, ours,
		      r->left < sizeof(ours) ? r->left : sizeof(ours)) == 0;
	if (*cut) {
		rd_fail(r);
		return SCHEMA_FOREIGN;
	}
	f = read_magic(r, SCHEMA_JOURNAL_MAGIC, SCHEMA_JOURNAL_VERSION_OLDEST,
		       SCHEMA_JOURNAL_VERSION, version);
	if (f == SCHEMA_OURS && *version >= SCHEMA_JOURNAL_VERSION_SALTED) {
		/* Cut inside the salt. */
		*cut = r->left < 8;
		*salt = rd_u64(r);
		if (*cut)
			return SCHEMA_FOREIGN;
	}
	return f;
}

/* The low 32 bits of XXH3-64 seeded with the journal's salt (seed 0 is
 * XXH3-64 unseeded, version 2's sum): what a torn or damaged frame, or
 * one of an earlier life of the file, needs.  By the CPU's widest vector
 * unit where the library can choose it (the same hash): 58 ns for a
 * 2.6 KiB frame, a turn's at the pipelined bench, against 153 ns by
 * SSE2. */
static uint32_t checksum(const void *p, size_t len, uint64_t salt)
{
#ifdef HAVE_XXH3_DISPATCH
	return (uint32_t)XXH3_64bits_withSeed_dispatch(p, len, salt);
#else
	return (uint32_t)XXH3_64bits_withSeed(p, len, salt);
#endif
}

void schema_seal_frame(unsigned char *head, const void *payload,
		       uint32_t len, uint64_t salt)
{
	rec_put_u32(rec_put_u32(head, len), checksum(payload, len, salt));
	rec_put_u32(head + 8, checksum(head, 8, salt));
}

enum schema_frame schema_read_frame(struct reader *r, bool check,
				    uint64_t salt, const void **payload,
				    uint32_t *len)
{
	const unsigned char *head = r->p;
	uint32_t body_sum, head_sum;

	*payload = NULL;
	*len = 0;
	if (r->left < SCHEMA_FRAME_HEAD)
		return SCHEMA_FRAME_CUT;
	*len = rd_u32(r);
	body_sum = rd_u32(r);
	head_sum = rd_u32(r);
	if (head_sum != checksum(head, 8, salt) || *len == 0)
		return SCHEMA_FRAME_BAD;
	if (*len > r->left)
		return SCHEMA_FRAME_CUT;
	*payload = r->p;
	r->p += *len;
	r->left -= *len;
	if (check && checksum(*payload, *len, salt) != body_sum)
		return r->left ? SCHEMA_FRAME_BAD : SCHEMA_FRAME_BAD_LAST;
	return SCHEMA_FRAME_WHOLE;
}

bool schema_frame_at(const unsigned char *p, size_t left, uint64_t salt)
{
	const void *payload;
	uint32_t len;
	struct reader r;

	/* A frame, its payload checked, that does not run past the end. */
	rd_init(&r, p, left);
	return schema_read_frame(&r, true, salt, &payload, &len) ==
	       SCHEMA_FRAME_WHOLE;
}

void schema_write_change(struct writer *w, const struct schema_change *c)
{
	wr_u8(w, c->put ? CHANGE_PUT : CHANGE_DELETE);
	wr_bytes(w, c->key, c->key_len);
	if (c->put)
		wr_bytes(w, c->value, c->value_len);
}

void schema_write_put(struct writer *w, const char *key,
		      struct evbuffer *value)
{
	wr_u8(w, CHANGE_PUT);
	wr_bytes(w, key, strlen(key));
	wr_evbuffer(w, value);
}

void schema_put_node_at(unsigned char *p, const char *path, size_t klen,
			const struct schema_node *n)
{
	*p++ = CHANGE_PUT;
	p = rec_put_u32(p, (uint32_t)klen);
	memcpy(p, path, klen);
	p = rec_put_u32(p + klen, (uint32_t)schema_node_len(n));
	node_bytes(p, n);
}

void schema_write_delete(struct writer *w, const char *key)
{
	wr_u8(w, CHANGE_DELETE);
	wr_bytes(w, key, strlen(key));
}

bool schema_read_change(struct reader *r, struct schema_change *c,
			bool check)
{
	struct schema_node n;
	uint8_t op = rd_u8(r);

	c->put = op == CHANGE_PUT;
	c->key = rd_bytes(r, &c->key_len);
	c->value = NULL;
	c->value_len = 0;
	if (c->put)
		c->value = rd_bytes(r, &c->value_len);
	if (!rd_ok(r) || (op != CHANGE_PUT && op != CHANGE_DELETE) ||
	    !c->key_len || c->key_len > SCHEMA_JOURNAL_KEY_MAX)
		return false;
	if (!check)
		return true;
	/* A node is checked as the tdb file's load checks it. */
	return !memchr(c->key, '\0', c->key_len) &&
	       (!c->put || !schema_key_is_node(c->key, c->key_len) ||
		schema_decode_node(c->key, c->key_len, c->value, c->value_len,
				   &n));
}

/* ---- the live-update image ---- */

void schema_write_lu_head(struct writer *w, const struct schema_lu_head *h)
{
	wr_str(w, SCHEMA_LU_MAGIC);
	wr_u32(w, SCHEMA_LU_VERSION);
	wr_u32(w, h->listen_fd);
	wr_str(w, h->listen_path);
}

enum schema_format schema_read_lu_head(struct reader *r,
				       struct schema_lu_head *h,
				       uint32_t *version)
{
	enum schema_format f = read_magic(r, SCHEMA_LU_MAGIC, SCHEMA_LU_VERSION,
					  SCHEMA_LU_VERSION, version);

	if (f != SCHEMA_OURS)
		return f;
	h->listen_fd = rd_u32(r);
	h->listen_path = rd_str(r);
	return rd_ok(r) ? SCHEMA_OURS : SCHEMA_FOREIGN;
}

void schema_write_queues_count(struct writer *w, uint32_t n)
{
	wr_u32(w, n);
}

void schema_write_queues(struct writer *w, uint32_t id, struct evbuffer *in,
			 size_t in_len, struct evbuffer *out,
			 const void *extra, size_t extra_len)
{
	unsigned char *p = in_len ? evbuffer_pullup(in, (ssize_t)in_len)
				  : NULL;

	if (in_len && !p) {
		w->failed = true;	/* no memory, or fewer bytes */
		return;
	}
	wr_u32(w, id);
	wr_bytes(w, p, in_len);
	wr_evbuffer_and(w, out, extra, extra_len);
}

bool schema_read_queues_count(struct reader *r, uint32_t *n)
{
	return rd_count(r, n, MIN_QUEUES);
}

bool schema_read_queues(struct reader *r, struct schema_queues *q)
{
	q->id = rd_u32(r);
	q->in = rd_bytes(r, &q->in_len);
	q->out = rd_bytes(r, &q->out_len);
	return rd_ok(r);
}
