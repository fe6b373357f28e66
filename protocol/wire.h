/*
 * protocol: the Xenstore wire format, parsed once at the edge.
 *
 * Owns nothing beyond the call: turns the bytes of one packet into a
 * validated request view and builds reply payloads.  Knows nothing of
 * connections or the store.  Message layout and error names come from
 * xen/io/xs_wire.h (Debian libxen-dev).
 */
#ifndef XS_PROTOCOL_WIRE_H
#define XS_PROTOCOL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

/* Types newer than the libxen-dev 4.17 header; values per docs/misc/xenstore.txt. */
enum {
	XS_TYPE_RESTRICT_REMOVED = 20,
	XS_TYPE_GET_FEATURE = 23,
	XS_TYPE_SET_FEATURE = 24,
	XS_TYPE_GET_QUOTA = 25,
	XS_TYPE_SET_QUOTA = 26,
	XS_TYPE_MAX = 27,	/* first value that is never a valid type */
};

#define WIRE_HDR_LEN ((size_t)sizeof(struct xsd_sockmsg))

/*
 * One request packet.  payload points at hdr.len bytes followed by one
 * extra NUL the framer appends, so a payload that lacks its terminator
 * can still be inspected safely; handlers must use the wire_* helpers to
 * decide whether the client's own framing was correct.
 */
struct request {
	struct xsd_sockmsg hdr;
	const char *payload;
};

/* Decoded header of a packet whose first WIRE_HDR_LEN bytes are at buf. */
void wire_decode_header(const void *buf, struct xsd_sockmsg *hdr);

/* Number of NUL-terminated strings in the payload (xs_count_strings rule). */
unsigned int wire_count_strings(const struct request *req);

/*
 * The single argument of a one-argument request: the payload must be one
 * string whose only NUL is its last byte.  NULL when the framing is wrong.
 */
const char *wire_single_arg(const struct request *req);

/*
 * Split the payload into at most max NUL-terminated strings; returns how
 * many were found.  Bytes after the last NUL are not a string.
 */
unsigned int wire_split(const struct request *req, const char **argv,
			unsigned int max);

/* The Xenstore error name for an errno value ("EINVAL" for unknown ones). */
const char *wire_error_name(int err);

/* Name of a message type for logs and traces ("UNKNOWN" if not one). */
const char *wire_type_name(uint32_t type);

/*
 * A reply payload under construction, never larger than the protocol
 * allows: appending past XENSTORE_PAYLOAD_MAX marks it overflowed, and the
 * caller answers E2BIG instead.
 */
struct reply {
	size_t len;
	bool overflow;
	char buf[XENSTORE_PAYLOAD_MAX];
};

void reply_reset(struct reply *r);
void reply_append(struct reply *r, const void *data, size_t len);
/* Append a string with its terminating NUL. */
void reply_append_str(struct reply *r, const char *s);
void reply_printf(struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parse a decimal unsigned number that fills the whole string. */
bool wire_parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif
