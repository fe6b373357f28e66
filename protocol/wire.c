/* The Xenstore wire format: header decoding, argument splitting, replies. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/wire.h"

void wire_decode_header(const void *buf, struct xsd_sockmsg *hdr)
{
	memcpy(hdr, buf, sizeof(*hdr));
}

unsigned int wire_count_strings(const struct request *req)
{
	unsigned int n = 0;

	for (uint32_t i = 0; i < req->hdr.len; i++)
		if (req->payload[i] == '\0')
			n++;
	return n;
}

const char *wire_single_arg(const struct request *req)
{
	size_t len = req->hdr.len;

	if (len == 0 || strlen(req->payload) != len - 1)
		return NULL;
	return req->payload;
}

unsigned int wire_split(const struct request *req, const char **argv,
			unsigned int max)
{
	const char *p = req->payload, *end = req->payload + req->hdr.len;
	unsigned int n = 0;

	while (n < max && p < end) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));

		if (!nul)
			break;
		argv[n++] = p;
		p = nul + 1;
	}
	return n;
}

const char *wire_error_name(int err)
{
	for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (xsd_errors[i].errnum == err)
			return xsd_errors[i].errstring;
	return "EINVAL";
}

#define TYPE_NAME(type, name, handler, flags) [type] = name,
static const char *const type_names[XS_TYPE_MAX] = {
	XS_MESSAGE_TYPES(TYPE_NAME)
};

const char *wire_type_name(uint32_t type)
{
	if (type < XS_TYPE_MAX && type_names[type])
		return type_names[type];
	return "UNKNOWN";
}

void reply_reset(struct reply *r)
{
	r->len = 0;
	r->overflow = false;
}

void reply_append(struct reply *r, const void *data, size_t len)
{
	if (r->overflow || len > sizeof(r->buf) - r->len) {
		r->overflow = true;
		return;
	}
	if (len == 0)
		return;	/* data may be NULL for an empty value */
	memcpy(r->buf + r->len, data, len);
	r->len += len;
}

void reply_append_str(struct reply *r, const char *s)
{
	reply_append(r, s, strlen(s) + 1);
}

void reply_printf(struct reply *r, const char *fmt, ...)
{
	/* vsnprintf wants room for a NUL the reply does not keep. */
	char tmp[XENSTORE_PAYLOAD_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		r->overflow = true;
	else
		reply_append(r, tmp, (size_t)n);
}

bool wire_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}
