/*
 * The journal files: reading them back (journal_scan), the last change of
 * each key (a fold), and making a new one.  See journal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/probes.h"
#include "persist/crash.h"
#include "persist/journal.h"

static void bad(struct journal_scan *s, const char *why, size_t at)
{
	s->state = JOURNAL_BAD;
	s->why = why;
	s->at = at;
}

/* Whether len bytes at p are all zero: the space a live journal
 * allocates ahead of its last frame (journal_out). */
static bool zeros(const unsigned char *p, size_t len)
{
	return !len || (!p[0] && memcmp(p, p + 1, len - 1) == 0);
}

/* Whether a whole frame of salt starts anywhere in the len bytes at p
 * (an offset at a time: where an earlier frame's end would be is not
 * known past a damaged one). */
static bool frame_of_salt_in(const unsigned char *p, size_t len,
			     uint64_t salt)
{
	for (size_t i = 0; i + SCHEMA_FRAME_HEAD <= len; i++) {
		/* The length first, here: most bytes fail it (through
		 * schema_frame_at alone, 4 ns a byte; so, 1.6 to 2.6: an
		 * 8 MiB tail in 13 to 22 ms, as the host runs). */
		uint32_t n = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
			     (uint32_t)p[i + 2] << 16 |
			     (uint32_t)p[i + 3] << 24;

		if (n && n <= len - i - SCHEMA_FRAME_HEAD &&
		    schema_frame_at(p + i, len - i, salt))
			return true;
	}
	return false;
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
	uint64_t salt;
	bool cut, salted;

	memset(s, 0, sizeof(*s));
	rd_init(&r, p, len);
	f = schema_read_journal_head(&r, &version, &salt, &cut);
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
	s->version = version;
	s->salt = salt;
	salted = version >= SCHEMA_JOURNAL_VERSION_SALTED;
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
		if (zeros(start, r.left))
			break;
		switch (schema_read_frame(&r, check, salt, &payload, &plen)) {
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
			if (zeros(r.p, r.left)) {
				/* A copy into the mapping cut short: the
				 * head, maybe some payload, then zeros. */
				s->state = JOURNAL_TORN;
				s->why = "its last frame is cut short (it "
					 "fails its check; zeros follow)";
				s->at = at;
				return 0;
			}
			if (salted) {
				/* What follows may be an earlier life's:
				 * damage only if a frame of this one is
				 * there. */
				if (frame_of_salt_in(start + 1,
						     len - at - 1, salt)) {
					bad(s, "a frame fails its check, and "
					       "a frame of the journal's "
					       "life follows it", at);
					return 0;
				}
				if (!payload) {
					/* Its frames end: the rest is an
					 * earlier life's. */
					s->state = JOURNAL_WHOLE;
					return 0;
				}
				s->state = JOURNAL_TORN;
				s->why = "its last frame fails its checksum";
				s->at = at;
				return 0;
			}
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

int journal_map(const char *path, bool through, struct journal_map *m)
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
		/* Populated at once when read through: a fault a few pages
		 * costs more than the scan (a trap to the hypervisor each).
		 * Not for a few changes here and there (jindex.h). */
		m->p = mmap(NULL, m->len, PROT_READ,
			    MAP_PRIVATE | (through ? MAP_POPULATE : 0), fd, 0);
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

/* The birth a change gives its node: 0 when it is no node's put, or
 * one that says "as before". */
static uint64_t put_born(const struct schema_change *c)
{
	return c->put ? schema_record_born(c->key, c->key_len, c->value,
					  c->value_len)
		      : 0;
}

uint64_t fold_entry_born(const struct fold_entry *e)
{
	uint64_t born = put_born(&e->c);

	return born ? born : e->born;
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
			/* A put "as before" keeps the birth of its key's put
			 * before (none after a delete). */
			uint64_t born = c->put && !put_born(c) && e->c.put
						? fold_entry_born(e)
						: 0;

			e->c.put = c->put;	/* the key stays the copy */
			e->c.value = c->value;
			e->c.value_len = c->value_len;
			e->born = born;
			return 0;
		}
	}
	if (fold_grow(f) != 0)
		return -1;
	e = &f->v[f->count];
	e->hash = h;
	e->born = 0;
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
	if (journal_map(path, true, m) != 0) {
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

/* A salt for a new life of a journal file: random, never 0 (version 2's
 * seed). */
static uint64_t new_salt(void)
{
	static uint64_t counter;	/* the loop's and the thread's */
	uint64_t salt = 0;

	if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != sizeof(salt)) {
		struct timespec ts;

		/* No entropy yet (early boot): distinct all the same. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		salt = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^
		       ((uint64_t)getpid() << 48) ^
		       (__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) *
			0x9e3779b97f4a7c15ull);
	}
	return salt ? salt : 1;
}

/* The version and salt of the journal open at fd: 0, or -1 with errno
 * (EINVAL: its head is not ours). */
static int read_head(int fd, uint32_t *version, uint64_t *salt)
{
	unsigned char head[SCHEMA_JOURNAL_HEAD_MAX];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	struct reader r;
	bool cut;

	if (n < 0)
		return -1;
	rd_init(&r, head, (size_t)n);
	if (schema_read_journal_head(&r, version, salt, &cut) != SCHEMA_OURS) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Write len bytes at off in full: 0, or -1 with errno. */
static int write_at(int fd, const void *p, size_t len, off_t off)
{
	const unsigned char *b = p;

	while (len) {
		ssize_t n = pwrite(fd, b, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!n)
				errno = ENOSPC;
			return -1;
		}
		b += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* A new journal at path (replaced if there): its fd, open to read and
 * write, with the head of a new salt (*salt) written; -1 with errno. */
static int journal_create(const char *path, uint64_t *salt)
{
	unsigned char head[SCHEMA_JOURNAL_HEAD_MAX];
	size_t len;
	int fd, err;

	*salt = new_salt();
	len = schema_journal_head_at(head, SCHEMA_JOURNAL_VERSION, *salt);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write_at(fd, head, len, 0) != 0) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Is k a mapping of the file sb describes? */
static bool kept_maps(const struct journal_kept *k, const struct stat *sb)
{
	return k && k->map && k->dev == sb->st_dev && k->ino == sb->st_ino;
}

int journal_renew(const char *path)
{
	unsigned char head[SCHEMA_JOURNAL_HEAD_MAX];
	size_t len = schema_journal_head_at(head, SCHEMA_JOURNAL_VERSION,
					    new_salt());
	int fd, err;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write_at(fd, head, len, 0) != 0) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return close(fd);
}

/* ---- appending through a mapping ---- */

/* Address space taken at once; grown by mremap past it. */
#define JOURNAL_MAP_MIN (8u << 20)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23		/* Linux 5.14 */
#endif

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

/* Room for the file to reach need bytes: allocated (so that no copy can
 * fault on a full file system) and mapped. */
static int journal_reserve(struct journal_out *j, size_t need)
{
	size_t size;

	if (need <= j->allocated)
		return 0;
	if (need > SIZE_MAX - 2 * j->ahead) {
		errno = EFBIG;
		return -1;
	}
	size = round_up(need + j->ahead, j->ahead);
	if (size > j->mapped) {
		size_t len = size > 2 * j->mapped ? size : 2 * j->mapped;
		void *p = mremap(j->map, j->mapped, len, MREMAP_MAYMOVE);

		if (p == MAP_FAILED)
			return -1;
		j->map = p;
		j->mapped = len;
	}
	if (fallocate(j->fd, 0, (off_t)j->allocated,
		      (off_t)(size - j->allocated)) != 0)
		return -1;
	j->allocated = size;
	return 0;
}

/* The mapping's page tables filled past need, up to ahead bytes more
 * (a spare's whole file at once would stall the loop for milliseconds),
 * before a copy reaches past what was: a fault a page otherwise.  Only
 * copies need it: frames written with pwrite never touch the mapping.
 * An older kernel faults instead. */
static void journal_populate(struct journal_out *j, size_t need)
{
	size_t from, to;

	if (need <= j->populated)
		return;
	/* From the page that holds the last byte populated before
	 * (madvise wants a page's start). */
	from = j->populated / 4096 * 4096;
	to = round_up(need, j->ahead);
	if (to > j->allocated)
		to = j->allocated;
	(void)madvise(j->map + from, to - from, MADV_POPULATE_WRITE);
	j->populated = to;
}

/* Take fd (an open journal whose first end bytes are its head and whole
 * frames, allocated bytes allocated) as j's: 0, or -1 with errno (fd
 * closed). */
static int attach(struct journal_out *j, int fd, size_t end,
		  size_t allocated, size_t ahead, struct journal_kept *k)
{
	int err;

	j->fd = fd;
	j->ahead = round_up(ahead ? ahead : 1, 4096);
	j->end = j->populated = end;
	j->allocated = allocated;
	if (k && k->map) {
		/* Beyond the file's end, truncation dropped them. */
		j->map = k->map;
		j->mapped = k->mapped;
		j->populated = k->populated < allocated ? k->populated
							: allocated;
		if (j->populated < end)
			j->populated = end;
		k->map = NULL;
	} else {
		j->mapped = round_up(allocated + 1, JOURNAL_MAP_MIN);
		j->map = mmap(NULL, j->mapped, PROT_READ | PROT_WRITE,
			      MAP_SHARED, j->fd, 0);
	}
	if (j->map == MAP_FAILED) {
		j->map = NULL;
		goto fail;
	}
	if (journal_reserve(j, end + 1) != 0)
		goto fail;
	return 0;
fail:
	err = errno;
	journal_close(j, false);
	errno = err;
	return -1;
}

int journal_open(struct journal_out *j, const char *path, size_t whole,
		 size_t ahead)
{
	int fd, err;

	j->fd = -1;
	j->map = NULL;
	j->mapped = j->allocated = j->populated = 0;
	if (whole) {
		unsigned char head[SCHEMA_JOURNAL_HEAD_MAX];
		size_t len;

		/* Its own head again, whatever the file has there now (a
		 * head spoilt behind the daemon's back is mended): version 1
		 * comes as 2, since what follows may say "as before"
		 * (schema.h), and a head cannot grow in front of frames. */
		if (j->version < 2)
			j->version = 2;
		len = schema_journal_head_at(head, j->version, j->salt);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0 && (ftruncate(fd, (off_t)whole) != 0 ||
				write_at(fd, head, len, 0) != 0)) {
			err = errno;
			close(fd);
			errno = err;
			return -1;
		}
	} else {
		j->version = SCHEMA_JOURNAL_VERSION;
		fd = journal_create(path, &j->salt);
		whole = schema_journal_head_len();
	}
	if (fd < 0)
		return -1;
	j->reused = false;
	return attach(j, fd, whole, whole, ahead, NULL);
}

int journal_reuse(struct journal_out *j, const char *spare, const char *path,
		  size_t ahead, struct journal_kept *k)
{
	size_t head = schema_journal_head_len();
	struct stat sb;
	int fd, err;

	j->fd = -1;
	j->map = NULL;
	j->mapped = j->allocated = j->populated = 0;
	if (rename(spare, path) != 0)
		return -1;
	CRASH_POINT("rotate-reused");
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) != 0 || read_head(fd, &j->version, &j->salt) != 0)
		err = errno;
	else if ((size_t)sb.st_size < head ||
		 j->version != SCHEMA_JOURNAL_VERSION)
		err = EINVAL;
	else {
		/* Its pages are there, its last life's frames after its new
		 * head (journal_renew): only the mapping's page tables may
		 * be new. */
		bool ours = kept_maps(k, &sb);

		if (k && !ours)
			journal_kept_free(k);
		j->reused = true;
		return attach(j, fd, head, (size_t)sb.st_size, ahead,
			      ours ? k : NULL);
	}
	close(fd);
	errno = err;
	return -1;
}

/*
 * Frames up to this size are copied into the mapping, larger ones written
 * with pwrite.  A copy costs little a byte, but the first store to each
 * page of a fresh mapping is dear where the hypervisor keeps shadow page
 * tables (about 8 us a page on the bench machines, against 2 us for a
 * small write()): past about 1.2 KiB the system call is cheaper.  Unless
 * the page tables are filled already, or will be worth filling: a spare
 * keeps its mapping from one life to the next (journal_kept), and with
 * it its page tables; there every frame is a copy (a twentieth of a
 * pwrite's cost a byte here, and no system call).
 */
#define JOURNAL_COPY_MAX 1024
/* Bytes after the last frame fetched into the cache for the next. */
#define JOURNAL_PREFETCH 256

int journal_append(struct journal_out *j, const unsigned char *frame,
		   size_t len)
{
	unsigned char *at;

	if (j->fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (journal_reserve(j, j->end + len) != 0)
		return -1;
	at = j->map + j->end;
	if (len > JOURNAL_COPY_MAX && j->end + len > j->populated &&
	    !j->reused) {
		size_t done = 0;

		/* The kernel copies in order, head first, as below. */
		crash_point_copy("commit-half", at, frame, SCHEMA_FRAME_HEAD);
		while (done < len) {
			ssize_t n = pwrite(j->fd, frame + done, len - done,
					   (off_t)(j->end + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (!n)
					errno = ENOSPC;
				/* Zeros again where it wrote: no half
				 * frame before the next one. */
				memset(at, 0, done);
				return -1;
			}
			done += (size_t)n;
		}
	} else {
		PROBE_START(t);

		journal_populate(j, j->end + len);
		memcpy(at, frame, SCHEMA_FRAME_HEAD);
		/* The head's stores before the payload's: a copy cut short
		 * is a frame whose checksum fails, never zeros read as the
		 * end. */
		__asm__ __volatile__("" ::: "memory");
		crash_point_copy("commit-half", at + SCHEMA_FRAME_HEAD,
				 frame + SCHEMA_FRAME_HEAD,
				 len - SCHEMA_FRAME_HEAD);
		memcpy(at + SCHEMA_FRAME_HEAD, frame + SCHEMA_FRAME_HEAD,
		       len - SCHEMA_FRAME_HEAD);
		/* The next frame's lines, fetched for writing while the
		 * loop waits for requests: a lone client's frame otherwise
		 * met them cold, three misses to memory a commit.  (Within
		 * the mapping: the file is allocated ahead past them.) */
		for (size_t i = 0; i < JOURNAL_PREFETCH; i += 64)
			__builtin_prefetch(at + len + i, 1, 3);
		/* A copy reaching a page this life had not written yet costs
		 * several times one within written pages, and more again in a
		 * new file, whose pages are new (bench/analysis.md). */
		PROBE_STOP(t, (j->end + len - 1) / 4096 == (j->end - 1) / 4096
				  ? PROBE_COPY
				  : j->reused ? PROBE_COPY_NEW_PAGE
					      : PROBE_COPY_NEW_FILE);
	}
	j->end += len;
	return 0;
}

int journal_shrink(struct journal_out *j)
{
	size_t size = round_up(j->end, 4096);

	if (j->fd < 0 || j->allocated <= size)
		return 0;
	if (ftruncate(j->fd, (off_t)size) != 0)
		return -1;
	j->allocated = size;
	if (j->populated > size)
		j->populated = size;
	/* Its pages are gone: a fresh journal's rules again. */
	j->reused = false;
	return 0;
}

void journal_kept_free(struct journal_kept *k)
{
	if (k->map)
		munmap(k->map, k->mapped);
	k->map = NULL;
}

int journal_close_keep(struct journal_out *j, struct journal_kept *k)
{
	struct stat sb;
	int err;

	k->map = NULL;
	if (j->fd >= 0 && j->map && fstat(j->fd, &sb) == 0) {
		*k = (struct journal_kept){
			.map = j->map, .mapped = j->mapped,
			/* Cut below: the pages past the end go. */
			.populated = j->populated < j->end ? j->populated
							   : j->end,
			.end = j->end,
			.dev = sb.st_dev, .ino = sb.st_ino,
		};
		j->map = NULL;
	}
	if (journal_close(j, true) == 0)
		return 0;
	err = errno;
	journal_kept_free(k);
	errno = err;
	return -1;
}

int journal_close(struct journal_out *j, bool cut)
{
	int rc = 0, err = 0;

	if (j->fd < 0)
		return 0;
	if (cut && j->allocated > j->end &&
	    ftruncate(j->fd, (off_t)j->end) != 0) {
		rc = -1;
		err = errno;
	}
	if (j->map)
		munmap(j->map, j->mapped);
	close(j->fd);
	j->fd = -1;
	j->map = NULL;
	j->mapped = j->allocated = 0;
	errno = err;
	return rc;
}
