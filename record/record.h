/*
 * record: the byte encoding shared by the database and the live-update
 * image.
 *
 * Writers append fixed-width little-endian integers and length-prefixed
 * byte strings to an evbuffer.  Readers take them back out of a byte range
 * with every length checked: a file is untrusted input, so a short or
 * corrupt record sets the reader's error flag and yields zeros and empty
 * strings, never a read past the end.  Callers test rd_ok() once at the
 * end of a record.
 */
#ifndef XS_RECORD_H
#define XS_RECORD_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

/* Appending fails only for lack of memory: wr_ok() says whether it did. */
struct writer {
	struct evbuffer *buf;		/* borrowed */
	bool failed;
};

/* v little-endian at p, as wr_u32 and wr_u64 write it (one store where
 * the host is little-endian too): p's next byte.  For encoders that
 * write in place, a node's at every change of it. */
static inline unsigned char *rec_put_u32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
	return p + 4;
}

static inline unsigned char *rec_put_u64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
	return p + 8;
}

/* The most bytes rec_put_varint writes. */
#define REC_VARINT_MAX 10

/* v in 7-bit groups, low first, the top bit of each byte saying another
 * follows (LEB128): p's next byte.  Small numbers take one byte. */
static inline unsigned char *rec_put_varint(unsigned char *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	return p;
}

void wr_init(struct writer *w, struct evbuffer *buf);
void wr_u8(struct writer *w, uint8_t v);
void wr_u32(struct writer *w, uint32_t v);
void wr_u64(struct writer *w, uint64_t v);
/* A u32 length, then the bytes. */
void wr_bytes(struct writer *w, const void *p, size_t len);
/* Bytes as they are, no length before them (an encoding made whole). */
void wr_raw(struct writer *w, const void *p, size_t len);
/* A string with its terminator (NULL is written as the empty string). */
void wr_str(struct writer *w, const char *s);
/* The bytes of an evbuffer, length first; src is not changed. */
void wr_evbuffer(struct writer *w, struct evbuffer *src);
/* The same, with extra bytes after src's under the one length. */
void wr_evbuffer_and(struct writer *w, struct evbuffer *src,
		     const void *extra, size_t extra_len);
static inline bool wr_ok(const struct writer *w)
{
	return !w->failed;
}

struct reader {
	const unsigned char *p;
	size_t left;
	bool bad;
};

void rd_init(struct reader *r, const void *p, size_t len);

/* Inline: a compaction reads every change of a journal with these. */
static inline const unsigned char *rd_take(struct reader *r, size_t len)
{
	const unsigned char *p;

	if (r->bad || len > r->left) {
		r->bad = true;
		return NULL;
	}
	p = r->p;
	r->p += len;
	r->left -= len;
	return p;
}

static inline uint8_t rd_u8(struct reader *r)
{
	const unsigned char *p = rd_take(r, 1);

	return p ? p[0] : 0;
}

static inline uint32_t rd_u32(struct reader *r)
{
	const unsigned char *p = rd_take(r, 4);

	return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		   (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}

uint64_t rd_u64(struct reader *r);
/* A rec_put_varint number; one longer than it needs to be, or past 64
 * bits, is an error (each number has one spelling). */
uint64_t rd_varint(struct reader *r);

/* Borrowed bytes of a wr_bytes field (NULL and 0 on error). */
static inline const void *rd_bytes(struct reader *r, uint32_t *len)
{
	uint32_t n = rd_u32(r);
	const unsigned char *p = rd_take(r, n);

	*len = p ? n : 0;
	return p;
}

/* A wr_str string: present, NUL-terminated inside its length; "" on error. */
const char *rd_str(struct reader *r);
/* Mark the record bad (a value out of range, say). */
static inline void rd_fail(struct reader *r)
{
	r->bad = true;
}
static inline bool rd_ok(const struct reader *r)
{
	return !r->bad;
}
/* Everything read and nothing left over. */
static inline bool rd_done(const struct reader *r)
{
	return !r->bad && r->left == 0;
}

#endif
