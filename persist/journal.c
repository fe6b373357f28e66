/*
 * The journal files: reading them back (journal_scan), the last change of
 * each key (a fold), and making a new one.  See journal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/journal.h"

static void bad(struct journal_scan *s, const char *why, size_t at)
{
	s->state = JOURNAL_BAD;
	s->why = why;
	s->at = at;
}

int journal_scan(const void *p, size_t len, struct journal_scan *s,
		 bool check,
		 int (*change)(const struct schema_change *c, void *arg),
		 int (*frame)(const void *bytes, size_t len, void *arg),
		 void *arg)
{
	const unsigned char *base = p;
	enum schema_format f;
	struct reader r;
	uint32_t version = 0;
	bool cut;

	memset(s, 0, sizeof(*s));
	rd_init(&r, p, len);
	f = schema_read_journal_head(&r, &version, &cut);
	if (cut) {
		/* Made, then stopped before its head was whole. */
		s->state = len ? JOURNAL_TORN : JOURNAL_WHOLE;
		s->why = "its head is cut short";
		return 0;
	}
	if (f != SCHEMA_OURS) {
		bad(s, f == SCHEMA_OTHER_VERSION ? "it is of another version"
						 : "it is not a xenstored journal",
		    0);
		return 0;
	}
	s->whole = len - r.left;
	while (r.left) {
		const unsigned char *start = r.p;
		size_t at = (size_t)(start - base), n;
		const void *payload;
		uint32_t plen;
		struct reader pr;
		struct schema_change c;
		int rc;

		n = 0;
		switch (schema_read_frame(&r, check, &payload, &plen)) {
		case SCHEMA_FRAME_CUT:
			s->state = JOURNAL_TORN;
			s->why = "its last frame is cut short";
			s->at = at;
			return 0;
		case SCHEMA_FRAME_BAD_LAST:
			s->state = JOURNAL_TORN;
			s->why = "its last frame fails its checksum";
			s->at = at;
			return 0;
		case SCHEMA_FRAME_BAD:
			bad(s, payload ? "a frame fails its checksum, and more "
					 "follows it"
				       : "a frame's head is damaged", at);
			return 0;
		case SCHEMA_FRAME_WHOLE:
			break;
		}
		rd_init(&pr, payload, plen);
		while (pr.left) {
			if (!schema_read_change(&pr, &c, check)) {
				bad(s, "a frame whose checksums hold has a "
				       "malformed change", at);
				return 0;
			}
			n++;
			if (change && (rc = change(&c, arg)) != 0)
				return rc;
		}
		if (frame && (rc = frame(start, (size_t)(r.p - start), arg)) != 0)
			return rc;
		s->frames++;
		s->changes += n;
		s->whole = (size_t)(r.p - base);
	}
	s->state = JOURNAL_WHOLE;
	return 0;
}

int journal_map(const char *path, struct journal_map *m)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	int err;

	m->p = NULL;
	m->len = 0;
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) != 0)
		goto fail;
	m->len = (size_t)sb.st_size;
	if (m->len) {
		m->p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m->p == MAP_FAILED) {
			m->p = NULL;
			m->len = 0;
			goto fail;
		}
	}
	close(fd);
	return 0;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

void journal_unmap(struct journal_map *m)
{
	if (m->p)
		munmap(m->p, m->len);
	m->p = NULL;
	m->len = 0;
}

/* ---- the fold ---- */

/* The keys, copied together: each lookup compares with its key's copy,
 * not with bytes far back in a journal (a cache miss a change). */
#define KEY_CHUNK (64 * 1024)

struct key_chunk {
	struct key_chunk *next;
	size_t used, cap;
	unsigned char bytes[];
};

static void *copy_key(struct fold *f, const void *key, size_t len)
{
	struct key_chunk *k = f->keys;

	if (!k || k->cap - k->used < len) {
		size_t cap = len > KEY_CHUNK ? len : KEY_CHUNK;

		k = malloc(sizeof(*k) + cap);
		if (!k)
			return NULL;
		k->next = f->keys;
		k->used = 0;
		k->cap = cap;
		f->keys = k;
	}
	memcpy(k->bytes + k->used, key, len);
	k->used += len;
	return k->bytes + k->used - len;
}

/* Eight bytes at a time, each mixed by a multiply: a fold meets every
 * change of a journal, and this is most of what it costs. */
static uint64_t hash_key(const unsigned char *p, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (len) {
		w = 0;
		memcpy(&w, p, len);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	return h ^ (h >> 29);
}

void fold_init(struct fold *f)
{
	memset(f, 0, sizeof(*f));
}

void fold_free(struct fold *f)
{
	free(f->v);
	free(f->slots);
	while (f->keys) {
		struct key_chunk *next = f->keys->next;

		free(f->keys);
		f->keys = next;
	}
	fold_init(f);
}

/* The slot of key: its entry's, or the empty one it would take. */
static uint32_t *slot_of(const struct fold *f, uint64_t h, const void *key,
			 size_t len)
{
	for (size_t i = h & f->mask;; i = (i + 1) & f->mask) {
		uint32_t *sl = &f->slots[i];
		const struct fold_entry *e;

		if (!*sl)
			return sl;
		e = &f->v[*sl - 1];
		if (e->hash == h && e->c.key_len == len &&
		    memcmp(e->c.key, key, len) == 0)
			return sl;
	}
}

/* Room for one more key: slots at most half full. */
static int fold_grow(struct fold *f)
{
	uint32_t *slots;
	size_t n;

	if (f->count == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 256;
		struct fold_entry *v;

		if (cap >= UINT32_MAX)
			return -1;
		v = realloc(f->v, cap * sizeof(*v));
		if (!v)
			return -1;
		f->v = v;
		f->cap = cap;
	}
	if (f->slots && 2 * (f->count + 1) <= f->mask + 1)
		return 0;
	n = f->slots ? 2 * (f->mask + 1) : 512;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -1;
	free(f->slots);
	f->slots = slots;
	f->mask = n - 1;
	for (size_t i = 0; i < f->count; i++)
		*slot_of(f, f->v[i].hash, f->v[i].c.key, f->v[i].c.key_len) =
			(uint32_t)i + 1;
	return 0;
}

int fold_add(struct fold *f, const struct schema_change *c)
{
	uint64_t h = hash_key(c->key, c->key_len);
	struct fold_entry *e;
	uint32_t *sl;

	if (f->slots) {
		sl = slot_of(f, h, c->key, c->key_len);
		if (*sl) {
			e = &f->v[*sl - 1];
			e->c.put = c->put;	/* the key stays the copy */
			e->c.value = c->value;
			e->c.value_len = c->value_len;
			return 0;
		}
	}
	if (fold_grow(f) != 0)
		return -1;
	e = &f->v[f->count];
	e->hash = h;
	e->c = *c;
	e->c.key = copy_key(f, c->key, c->key_len);
	if (!e->c.key)
		return -1;
	*slot_of(f, h, c->key, c->key_len) = (uint32_t)++f->count;
	return 0;
}

int fold_change(const struct schema_change *c, void *arg)
{
	return fold_add(arg, c);
}

const struct fold_entry *fold_find(const struct fold *f, const void *key,
				   size_t len)
{
	uint32_t *sl;

	if (!f->slots)
		return NULL;
	sl = slot_of(f, hash_key(key, len), key, len);
	return *sl ? &f->v[*sl - 1] : NULL;
}

int journal_fold_file(const char *path, bool check, struct journal_map *m,
		      struct fold *f, struct journal_scan *s,
		      const char **why)
{
	if (journal_map(path, m) != 0) {
		*why = strerror(errno);
		return errno == ENOENT ? 1 : -1;
	}
	if (journal_scan(m->p, m->len, s, check, fold_change, NULL, f) != 0) {
		*why = "out of memory";
		return -1;
	}
	if (s->state == JOURNAL_BAD) {
		*why = s->why;
		return -1;
	}
	return 0;
}

int journal_create(const char *path)
{
	unsigned char head[64];
	struct evbuffer *b = evbuffer_new();
	struct writer w;
	size_t len = 0;
	ssize_t n;
	int fd, err;

	if (b) {
		wr_init(&w, b);
		schema_write_journal_head(&w);
		len = evbuffer_get_length(b);
		if (!wr_ok(&w) || len > sizeof(head) ||
		    evbuffer_remove(b, head, len) != (int)len)
			len = 0;
		evbuffer_free(b);
	}
	if (!len) {
		errno = ENOMEM;
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -1;
	n = write(fd, head, len);
	if (n != (ssize_t)len) {
		err = n < 0 ? errno : ENOSPC;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}
