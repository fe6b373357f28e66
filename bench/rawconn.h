/*
 * bench/rawconn: a client speaking xenstore packets on a Unix socket
 * directly, without libxenstore.
 *
 * The watch benchmarks need to know when a packet reaches the client, and
 * libxenstore hands watch events through a reader thread, whose wake-up
 * would be measured along with the daemon.  Replies and events are read
 * into a buffer and taken out whole; a body stays valid until the next
 * raw_fill on the same connection.
 */
#ifndef XS_BENCH_RAWCONN_H
#define XS_BENCH_RAWCONN_H

#include <stddef.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

struct raw_conn {
	int fd;
	size_t start, end;	/* unread bytes of buf */
	char buf[1 << 16];
};

/* 0, or -1 with a message on stderr. */
int raw_connect(struct raw_conn *rc, const char *path);
void raw_close(struct raw_conn *rc);

/*
 * Append a packet of type with body (len bytes, NULs included as the
 * operation wants them) to out, which has room for sizeof(struct
 * xsd_sockmsg) + len more bytes; returns the bytes appended.
 */
size_t raw_pack(char *out, uint32_t type, uint32_t req_id, const void *body,
		size_t len);

/* Write all of p; 0, or -1 with a message on stderr. */
int raw_send(struct raw_conn *rc, const void *p, size_t len);

/* One read() into the buffer; bytes read, or -1 (EOF included) with a
 * message on stderr. */
int raw_fill(struct raw_conn *rc);

/* Take one packet already buffered: 1 when there was one, 0 when not
 * yet, -1 for a malformed header. */
int raw_take(struct raw_conn *rc, struct xsd_sockmsg *hdr,
	     const char **body);

/* Take the next packet, reading as needed: 0 or -1. */
int raw_recv(struct raw_conn *rc, struct xsd_sockmsg *hdr,
	     const char **body);

#endif
