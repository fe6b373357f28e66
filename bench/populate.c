/* Pipelined raw WRITE packets (see bench/populate.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xen/io/xs_wire.h>

#include "bench/layout.h"
#include "bench/populate.h"

/*
 * Requests per batch.  Two batches in flight stay far below the socket
 * buffers, so neither side can block the other for good.
 */
#define BATCH 512
#define MAX_PACKET (sizeof(struct xsd_sockmsg) + BENCH_PATH_MAX + BENCH_VALUE_MAX)

struct batch {
	char buf[BATCH * MAX_PACKET];
	size_t len;
	unsigned int count;
};

/* Buffered reads: one syscall per many replies. */
struct reader {
	int fd;
	size_t start, end;
	char buf[1 << 16];
};

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "populate: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "populate: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void build(struct batch *b, unsigned long from, unsigned long to)
{
	b->len = 0;
	b->count = 0;
	for (unsigned long i = from; i < to; i++) {
		struct xsd_sockmsg hdr = { .type = XS_WRITE,
					   .req_id = (uint32_t)i };
		char *body = b->buf + b->len + sizeof(hdr);
		int plen = bench_node_path(body, BENCH_PATH_MAX, i);
		/* WRITE is "path\0value", the value without a NUL. */
		int vlen = bench_node_value(body + plen + 1, BENCH_VALUE_MAX, i);

		hdr.len = (uint32_t)(plen + 1 + vlen);
		memcpy(b->buf + b->len, &hdr, sizeof(hdr));
		b->len += sizeof(hdr) + hdr.len;
		b->count++;
	}
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "populate: write: %s\n",
				n ? strerror(errno) : "short write");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_exact(struct reader *r, void *dst, size_t len)
{
	char *out = dst;

	while (len) {
		size_t have = r->end - r->start;

		if (have == 0) {
			ssize_t n = read(r->fd, r->buf, sizeof(r->buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "populate: read: %s\n",
					n ? strerror(errno) : "daemon closed");
				return -1;
			}
			r->start = 0;
			r->end = (size_t)n;
			continue;
		}
		if (have > len)
			have = len;
		memcpy(out, r->buf + r->start, have);
		r->start += have;
		out += have;
		len -= have;
	}
	return 0;
}

static int read_replies(struct reader *r, unsigned int count)
{
	char body[XENSTORE_PAYLOAD_MAX + 1];

	for (unsigned int i = 0; i < count; i++) {
		struct xsd_sockmsg hdr;

		if (read_exact(r, &hdr, sizeof(hdr)) < 0)
			return -1;
		if (hdr.len > XENSTORE_PAYLOAD_MAX) {
			fprintf(stderr, "populate: reply of %u bytes\n",
				hdr.len);
			return -1;
		}
		if (read_exact(r, body, hdr.len) < 0)
			return -1;
		if (hdr.type != XS_WRITE) {
			body[hdr.len] = '\0';
			fprintf(stderr, "populate: write %u failed: %s\n",
				hdr.req_id, body);
			return -1;
		}
	}
	return 0;
}

int bench_populate(const char *path, unsigned long from, unsigned long to)
{
	struct batch *b = malloc(2 * sizeof(*b));
	struct reader *r = malloc(sizeof(*r));
	unsigned long next = from;
	int fd = -1, ret = -1, cur = 0;

	if (!b || !r)
		goto out;
	fd = connect_to(path);
	if (fd < 0)
		goto out;
	r->fd = fd;
	r->start = r->end = 0;
	b[0].count = 0;
	if (next < to) {
		unsigned long end = to - next > BATCH ? next + BATCH : to;

		build(&b[0], next, end);
		next = end;
		if (write_all(fd, b[0].buf, b[0].len) < 0)
			goto out;
	}
	while (b[cur].count) {
		struct batch *nb = &b[!cur];

		nb->count = 0;
		if (next < to) {
			unsigned long end = to - next > BATCH ? next + BATCH
							      : to;

			build(nb, next, end);
			next = end;
			if (write_all(fd, nb->buf, nb->len) < 0)
				goto out;
		}
		if (read_replies(r, b[cur].count) < 0)
			goto out;
		cur = !cur;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(r);
	free(b);
	return ret;
}
