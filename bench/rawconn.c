/* Raw xenstore packets on a Unix socket (see bench/rawconn.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench/rawconn.h"

int raw_connect(struct raw_conn *rc, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	rc->start = rc->end = 0;
	rc->fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "rawconn: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	rc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rc->fd < 0 ||
	    connect(rc->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "rawconn: %s: %s\n", path, strerror(errno));
		raw_close(rc);
		return -1;
	}
	return 0;
}

void raw_close(struct raw_conn *rc)
{
	if (rc->fd >= 0)
		close(rc->fd);
	rc->fd = -1;
}

size_t raw_pack(char *out, uint32_t type, uint32_t req_id, const void *body,
		size_t len)
{
	struct xsd_sockmsg hdr = { .type = type, .req_id = req_id,
				   .len = (uint32_t)len };

	memcpy(out, &hdr, sizeof(hdr));
	memcpy(out + sizeof(hdr), body, len);
	return sizeof(hdr) + len;
}

int raw_send(struct raw_conn *rc, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(rc->fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "rawconn: write: %s\n",
				n ? strerror(errno) : "short write");
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

int raw_fill(struct raw_conn *rc)
{
	ssize_t n;

	/* Slide the unread tail down: a packet is far smaller than buf. */
	if (rc->start) {
		memmove(rc->buf, rc->buf + rc->start, rc->end - rc->start);
		rc->end -= rc->start;
		rc->start = 0;
	}
	do
		n = read(rc->fd, rc->buf + rc->end, sizeof(rc->buf) - rc->end);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		fprintf(stderr, "rawconn: read: %s\n",
			n ? strerror(errno) : "daemon closed the connection");
		return -1;
	}
	rc->end += (size_t)n;
	return (int)n;
}

int raw_take(struct raw_conn *rc, struct xsd_sockmsg *hdr,
	     const char **body)
{
	size_t have = rc->end - rc->start;

	if (have < sizeof(*hdr))
		return 0;
	memcpy(hdr, rc->buf + rc->start, sizeof(*hdr));
	if (hdr->len > XENSTORE_PAYLOAD_MAX) {
		fprintf(stderr, "rawconn: packet of %u bytes\n", hdr->len);
		return -1;
	}
	if (have < sizeof(*hdr) + hdr->len)
		return 0;
	*body = rc->buf + rc->start + sizeof(*hdr);
	rc->start += sizeof(*hdr) + hdr->len;
	return 1;
}

int raw_recv(struct raw_conn *rc, struct xsd_sockmsg *hdr,
	     const char **body)
{
	int got;

	while ((got = raw_take(rc, hdr, body)) == 0)
		if (raw_fill(rc) < 0)
			return -1;
	return got < 0 ? -1 : 0;
}
