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

/* Without memory, an entry is left out and marked, never exit(). */
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(e) ((e)->oom = true)

#include "persist/journal.h"

/* Check every change of a whole frame; false if one is malformed. */
static bool frame_ok(const void *payload, uint32_t len, size_t *n)
{
	struct schema_change c;
	struct reader r;

	*n = 0;
	rd_init(&r, payload, len);
	while (r.left) {
		if (!schema_read_change(&r, &c))
			return false;
		++*n;
	}
	return true;
}

static void bad(struct journal_scan *s, const char *why, size_t at)
{
	s->state = JOURNAL_BAD;
	s->why = why;
	s->at = at;
}

int journal_scan(const void *p, size_t len, struct journal_scan *s,
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

		switch (schema_read_frame(&r, &payload, &plen)) {
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
		if (!frame_ok(payload, plen, &n)) {
			bad(s, "a frame whose checksums hold has a malformed "
			       "change", at);
			return 0;
		}
		rd_init(&pr, payload, plen);
		while (change && pr.left) {
			schema_read_change(&pr, &c);
			if ((rc = change(&c, arg)) != 0)
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

#define FOLD_BLOCK 1024

struct fold_block {
	struct fold_block *next;
	size_t used;
	struct fold_entry e[FOLD_BLOCK];
};

void fold_init(struct fold *f)
{
	memset(f, 0, sizeof(*f));
}

void fold_free(struct fold *f)
{
	HASH_CLEAR(hh, f->by_key);
	while (f->blocks) {
		struct fold_block *next = f->blocks->next;

		free(f->blocks);
		f->blocks = next;
	}
	f->count = 0;
}

int fold_add(struct fold *f, const struct schema_change *c)
{
	struct fold_entry *e;
	struct fold_block *b = f->blocks;

	HASH_FIND(hh, f->by_key, c->key, c->key_len, e);
	if (e) {
		e->c = *c;
		return 0;
	}
	if (!b || b->used == FOLD_BLOCK) {
		b = malloc(sizeof(*b));
		if (!b)
			return -1;
		b->next = f->blocks;
		b->used = 0;
		f->blocks = b;
	}
	e = &b->e[b->used];
	memset(e, 0, sizeof(*e));
	e->c = *c;
	HASH_ADD_KEYPTR(hh, f->by_key, e->c.key, e->c.key_len, e);
	if (e->oom)
		return -1;
	b->used++;
	f->count++;
	return 0;
}

int fold_change(const struct schema_change *c, void *arg)
{
	return fold_add(arg, c);
}

const struct fold_entry *fold_find(const struct fold *f, const void *key,
				   size_t len)
{
	struct fold_entry *e;

	HASH_FIND(hh, f->by_key, key, len, e);
	return e;
}

int journal_fold_file(const char *path, struct journal_map *m,
		      struct fold *f, struct journal_scan *s,
		      const char **why)
{
	if (journal_map(path, m) != 0) {
		*why = strerror(errno);
		return errno == ENOENT ? 1 : -1;
	}
	if (journal_scan(m->p, m->len, s, fold_change, NULL, f) != 0) {
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
