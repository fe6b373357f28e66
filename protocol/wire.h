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

/*
 * Every message type, once: X(constant, "NAME", handler, flags).  The name
 * is what logs and traces show; handler (NULL: answered ENOSYS, for the
 * types clients never send) and flags (OP_PRIV: privileged callers only;
 * OP_NOTID: tx_id ignored) are the request table's, in ops/.  protocol/
 * expands it for the names, ops/ for the handlers, each with its own X,
 * so adding a type is one line here and its handler, and this header
 * depends on nothing of ops/.
 */
#define XS_MESSAGE_TYPES(X) \
	X(XS_CONTROL, "CONTROL", op_control, OP_PRIV) \
	X(XS_DIRECTORY, "DIRECTORY", op_directory, 0) \
	X(XS_READ, "READ", op_read, 0) \
	X(XS_GET_PERMS, "GET_PERMS", op_get_perms, 0) \
	X(XS_WATCH, "WATCH", op_watch, OP_NOTID) \
	X(XS_UNWATCH, "UNWATCH", op_unwatch, OP_NOTID) \
	X(XS_TRANSACTION_START, "TRANSACTION_START", op_transaction_start, 0) \
	X(XS_TRANSACTION_END, "TRANSACTION_END", op_transaction_end, 0) \
	X(XS_INTRODUCE, "INTRODUCE", op_introduce, OP_PRIV) \
	X(XS_RELEASE, "RELEASE", op_release, OP_PRIV) \
	X(XS_GET_DOMAIN_PATH, "GET_DOMAIN_PATH", op_get_domain_path, 0) \
	X(XS_WRITE, "WRITE", op_write, 0) \
	X(XS_MKDIR, "MKDIR", op_mkdir, 0) \
	X(XS_RM, "RM", op_rm, 0) \
	X(XS_SET_PERMS, "SET_PERMS", op_set_perms, 0) \
	X(XS_WATCH_EVENT, "WATCH_EVENT", NULL, 0) \
	X(XS_ERROR, "ERROR", NULL, 0) \
	X(XS_IS_DOMAIN_INTRODUCED, "IS_DOMAIN_INTRODUCED", op_is_domain_introduced, OP_PRIV) \
	X(XS_RESUME, "RESUME", op_resume, OP_PRIV) \
	X(XS_SET_TARGET, "SET_TARGET", op_set_target, OP_PRIV) \
	X(XS_TYPE_RESTRICT_REMOVED, "RESTRICT", NULL, 0) \
	X(XS_RESET_WATCHES, "RESET_WATCHES", op_reset_watches, 0) \
	X(XS_DIRECTORY_PART, "DIRECTORY_PART", op_directory_part, 0) \
	/* a domain's own features: anyone may ask */ \
	X(XS_TYPE_GET_FEATURE, "GET_FEATURE", op_get_feature, 0) \
	X(XS_TYPE_SET_FEATURE, "SET_FEATURE", op_set_feature, OP_PRIV) \
	X(XS_TYPE_GET_QUOTA, "GET_QUOTA", op_get_quota, OP_PRIV) \
	X(XS_TYPE_SET_QUOTA, "SET_QUOTA", op_set_quota, OP_PRIV)

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
