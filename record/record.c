/* The record encoding: see record.h. */
#include <stdlib.h>
#include <string.h>

#include "record/record.h"

void wr_init(struct writer *w, struct evbuffer *buf)
{
	w->buf = buf;
	w->failed = false;
}

static void put(struct writer *w, const void *p, size_t len)
{
	if (!w->failed && len && evbuffer_add(w->buf, p, len) != 0)
		w->failed = true;
}

void wr_raw(struct writer *w, const void *p, size_t len)
{
	put(w, p, len);
}

void wr_u8(struct writer *w, uint8_t v)
{
	put(w, &v, 1);
}

void wr_u32(struct writer *w, uint32_t v)
{
	unsigned char b[4];

	rec_put_u32(b, v);
	put(w, b, sizeof(b));
}

void wr_u64(struct writer *w, uint64_t v)
{
	unsigned char b[8];

	rec_put_u64(b, v);
	put(w, b, sizeof(b));
}

void wr_bytes(struct writer *w, const void *p, size_t len)
{
	if (len > UINT32_MAX) {
		w->failed = true;
		return;
	}
	wr_u32(w, (uint32_t)len);
	put(w, p, len);
}

void wr_str(struct writer *w, const char *s)
{
	if (!s)
		s = "";
	wr_bytes(w, s, strlen(s) + 1);
}

void wr_evbuffer(struct writer *w, struct evbuffer *src)
{
	wr_evbuffer_and(w, src, NULL, 0);
}

void wr_evbuffer_and(struct writer *w, struct evbuffer *src,
		     const void *extra, size_t extra_len)
{
	size_t len = evbuffer_get_length(src) + extra_len;
	struct evbuffer_iovec *v;
	int n;

	if (len > UINT32_MAX) {
		w->failed = true;
		return;
	}
	wr_u32(w, (uint32_t)len);
	/* Copy chunk by chunk: src keeps its bytes and its layout. */
	n = evbuffer_peek(src, -1, NULL, NULL, 0);
	if (!w->failed && n > 0) {
		v = calloc((size_t)n, sizeof(*v));
		if (!v) {
			w->failed = true;
			return;
		}
		n = evbuffer_peek(src, -1, NULL, v, n);
		for (int i = 0; i < n; i++)
			put(w, v[i].iov_base, v[i].iov_len);
		free(v);
	}
	put(w, extra, extra_len);
}

void rd_init(struct reader *r, const void *p, size_t len)
{
	r->p = p;
	r->left = len;
	r->bad = false;
}

uint64_t rd_u64(struct reader *r)
{
	uint64_t lo = rd_u32(r), hi = rd_u32(r);

	return r->bad ? 0 : lo | hi << 32;
}

uint64_t rd_varint(struct reader *r)
{
	uint64_t v = 0;

	for (unsigned int shift = 0; shift < 64; shift += 7) {
		const unsigned char *p = rd_take(r, 1);

		if (!p)
			return 0;
		if (shift == 63 && *p > 1)
			break;		/* past 64 bits */
		v |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p & 0x80)) {
			if (*p || !shift)
				return v;
			break;		/* a last byte of 0: too long */
		}
	}
	r->bad = true;
	return 0;
}

const char *rd_str(struct reader *r)
{
	uint32_t len;
	const char *s = rd_bytes(r, &len);

	if (!s || len == 0 || memchr(s, '\0', len) != s + len - 1) {
		r->bad = true;
		return "";
	}
	return s;
}
